//! Go toolchains as modules: the `golang.org/toolchain` module and the
//! platforms Go releases toolchains for (cmd/go/internal/toolchain).

/// The module the go command downloads toolchains from.
pub const MODULE: &str = "golang.org/toolchain";
/// The GOOS-GOARCH pairs Go has released toolchains for (`go tool dist list`
/// of Go 1.21 to 1.26: `windows-arm` and `freebsd-riscv64` left later), so a
/// typo in the configuration is refused instead of mirroring nothing.
pub const PLATFORMS: &[&str] = &[
    "aix-ppc64",
    "android-386",
    "android-amd64",
    "android-arm",
    "android-arm64",
    "darwin-amd64",
    "darwin-arm64",
    "dragonfly-amd64",
    "freebsd-386",
    "freebsd-amd64",
    "freebsd-arm",
    "freebsd-arm64",
    "freebsd-riscv64",
    "illumos-amd64",
    "ios-amd64",
    "ios-arm64",
    "js-wasm",
    "linux-386",
    "linux-amd64",
    "linux-arm",
    "linux-arm64",
    "linux-loong64",
    "linux-mips",
    "linux-mips64",
    "linux-mips64le",
    "linux-mipsle",
    "linux-ppc64",
    "linux-ppc64le",
    "linux-riscv64",
    "linux-s390x",
    "netbsd-386",
    "netbsd-amd64",
    "netbsd-arm",
    "netbsd-arm64",
    "openbsd-386",
    "openbsd-amd64",
    "openbsd-arm",
    "openbsd-arm64",
    "openbsd-ppc64",
    "openbsd-riscv64",
    "plan9-386",
    "plan9-amd64",
    "plan9-arm",
    "solaris-amd64",
    "wasip1-wasm",
    "windows-386",
    "windows-amd64",
    "windows-arm",
    "windows-arm64",
];

/// Whether `platform` is a GOOS-GOARCH pair Go knows.
pub fn is_platform(platform: &str) -> bool {
    PLATFORMS.contains(&platform)
}
