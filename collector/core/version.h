#pragma once
namespace tickprobe {
inline constexpr const char* kVersion = "0.1.0";
}
