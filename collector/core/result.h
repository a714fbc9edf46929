// Errors travel as values. An Error says what failed (with the OS error when
// there is one) and carries an optional hint; the CLI prints it once, at the
// top, as "error: <message>" followed by "hint: <hint>".
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tickprobe {

struct Error {
  std::string message;
  std::string hint;

  Error() = default;
  explicit Error(std::string msg, std::string h = {}) : message(std::move(msg)), hint(std::move(h)) {}

  // "<what>: <strerror(err)>" — err is a positive errno (libbpf returns -errno).
  static Error from_errno(const std::string& what, int err, std::string hint = {}) {
    if (err < 0) err = -err;
    return Error(what + ": " + std::strerror(err), std::move(hint));
  }
  Error& with_hint(std::string h) {
    if (hint.empty()) hint = std::move(h);
    return *this;
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error err) : v_(std::move(err)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const Error& error() const { return std::get<1>(v_); }
  T take() { return std::move(std::get<0>(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error err) : err_(std::move(err)) {}  // NOLINT
  bool ok() const { return !err_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *err_; }

 private:
  std::optional<Error> err_;
};

using Status = Result<void>;

}  // namespace tickprobe
