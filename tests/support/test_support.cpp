#include "test_support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace tickprobe::test {

namespace {
std::string make_temp_file(const char* tag) {
  std::string tmpl = std::string("/tmp/tickprobe-test-") + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkstemp(buf.data());
  if (fd < 0) throw std::runtime_error(std::string("mkstemp failed: ") + std::strerror(errno));
  close(fd);
  return buf.data();
}

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}
}  // namespace

Subprocess::Subprocess(std::vector<std::string> argv, std::vector<std::string> extra_env, std::string stdout_path,
                       std::string stderr_path)
    : out_path_(std::move(stdout_path)), err_path_(std::move(stderr_path)) {
  if (argv.empty()) throw std::invalid_argument("Subprocess: empty argv");
  if (out_path_.empty()) { out_path_ = make_temp_file("out"); own_out_ = true; }
  if (err_path_.empty()) { err_path_ = make_temp_file("err"); own_err_ = true; }
  // Build everything before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    bool overridden = false;
    for (auto& x : extra_env) overridden |= x.substr(0, x.find('=')) == key;
    if (!overridden) env.push_back(kv);
  }
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  int out_fd = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("Subprocess: cannot open capture files");
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(cargv[0], cargv.data(), cenv.data());
    const char msg[] = "Subprocess: execve failed\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(127);
  }
  close(out_fd);
  close(err_fd);
  if (pid_ < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
}

Subprocess::Subprocess(Subprocess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), status_(o.status_), out_path_(std::move(o.out_path_)), err_path_(std::move(o.err_path_)),
      own_out_(std::exchange(o.own_out_, false)), own_err_(std::exchange(o.own_err_, false)) {}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !status_) kill_now();
  if (own_out_) unlink(out_path_.c_str());
  if (own_err_) unlink(err_path_.c_str());
}

bool Subprocess::running() { return pid_ > 0 && !wait_for(std::chrono::milliseconds(0)).has_value(); }

std::optional<int> Subprocess::wait_for(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) { status_ = decode_status(st); return status_; }
    if (r < 0 && errno != EINTR) { status_ = -1; return status_; }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int Subprocess::terminate(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (status_) return *status_;
  ::kill(pid_, SIGTERM);
  if (auto st = wait_for(grace)) return *st;
  kill_now();
  return status_.value_or(-1);
}

void Subprocess::kill_now() {
  if (pid_ <= 0 || status_) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {}
  status_ = decode_status(st);
}

int count_fds(pid_t pid, const std::string& prefix) {
  int n = 0;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      char buf[256];
      ssize_t len = readlink((dir + "/" + e->d_name).c_str(), buf, sizeof(buf) - 1);
      if (len <= 0) continue;
      buf[len] = 0;
      if (std::string(buf).rfind(prefix, 0) == 0) n++;
    }
    closedir(d);
  }
  return n;
}

int count_probe_fds(pid_t pid) {
  int n = count_fds(pid, "anon_inode:[perf_event]");
  std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      FILE* f = fopen((dir + "/" + e->d_name).c_str(), "r");
      if (!f) continue;
      char line[256];
      while (fgets(line, sizeof line, f))
        if (std::strncmp(line, "link_type:", 10) == 0 &&
            (std::strstr(line, "uprobe_multi") || std::strstr(line, "uretprobe_multi")))
          n++;
      fclose(f);
    }
    closedir(d);
  }
  return n;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Subprocess::stdout_text() const { return read_file(out_path_); }
std::string Subprocess::stderr_text() const { return read_file(err_path_); }

namespace {
template <class F>
HttpResult http_call(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout, F&& f) {
  httplib::Client cli(host, port);
  cli.set_connection_timeout(timeout);
  cli.set_read_timeout(timeout);
  cli.set_write_timeout(timeout);
  auto res = f(cli);
  if (!res) return {};
  return {res->status, res->body};
}
}  // namespace

HttpResult http_get(const std::string& host, std::uint16_t port, const std::string& path, std::chrono::milliseconds timeout) {
  return http_call(host, port, timeout, [&](httplib::Client& c) { return c.Get(path); });
}

HttpResult http_post(const std::string& host, std::uint16_t port, const std::string& path, const std::string& body,
                     const std::string& content_type, std::chrono::milliseconds timeout) {
  return http_call(host, port, timeout, [&](httplib::Client& c) { return c.Post(path, body, content_type); });
}

bool wait_for_tcp_port(std::uint16_t port, std::chrono::milliseconds timeout, const std::string& host) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return false;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      close(fd);
      if (ok) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::uint16_t pick_free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

std::string bin_path(const std::string& name) { return std::string(TICKPROBE_BIN_DIR) + "/" + name; }

}  // namespace tickprobe::test
