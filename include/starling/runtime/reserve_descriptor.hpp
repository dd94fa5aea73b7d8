// A file descriptor held in reserve. Out of descriptors, a server cannot even accept a connection to
// refuse it: the client waits in the listen backlog for an answer that never comes. With one
// descriptor set aside, the server can give it back, accept the waiting connections one at a time
// (each reuses the freed number), answer them, close them, and take its reserve again.
#pragma once

#if defined(_WIN32)

namespace starling::detail {

// Sockets on Windows are handles, with no per-process limit like POSIX's RLIMIT_NOFILE to run into:
// nothing to reserve.
class reserve_descriptor {
public:
    bool acquire() noexcept { return false; }
    bool release() noexcept { return false; }
    bool held() const noexcept { return false; }
};

}  // namespace starling::detail

#else

#include <fcntl.h>   // ::open
#include <unistd.h>  // ::close

namespace starling::detail {

class reserve_descriptor {
public:
    reserve_descriptor() = default;
    reserve_descriptor(const reserve_descriptor&) = delete;
    reserve_descriptor& operator=(const reserve_descriptor&) = delete;
    ~reserve_descriptor() { release(); }

    /// Takes a descriptor (of /dev/null, which any process may open and which costs nothing) unless
    /// one is held already. False if none could be had.
    bool acquire() noexcept {
        if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        return fd_ >= 0;
    }

    /// Gives the descriptor back, so that the next one the process opens can have it. False if none
    /// was held.
    bool release() noexcept {
        if (fd_ < 0) return false;
        ::close(fd_);
        fd_ = -1;
        return true;
    }

    bool held() const noexcept { return fd_ >= 0; }

private:
    int fd_ = -1;
};

}  // namespace starling::detail

#endif
