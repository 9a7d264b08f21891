#include "util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <random>

#include "util/error.h"

namespace strata {

namespace {

const char* kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

// The temporary files being written, for the SIGINT/SIGTERM handler: a handler can reach only
// globals, and only lock-free ones safely. A slot is 0 (free), 1 (being filled) or 2 (armed).
struct TempSlot {
    std::atomic<int> state{0};
    char path[4096];
};
TempSlot g_temp_files[32];

extern "C" void remove_temp_files_and_die(int sig) {
    for (TempSlot& s : g_temp_files) {
        if (s.state.load(std::memory_order_acquire) == 2) ::unlink(s.path);
    }
    // Die of the signal as if no handler were installed (the shell sees 130 / 143).
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
    raise(sig);
}

// Only where the program has not handled the signal itself (chat's Ctrl-C stops a reply instead).
// Checked at every file: two system calls, next to the file's own open and rename.
void install_signal_handlers() {
    for (int sig : {SIGINT, SIGTERM}) {
        struct sigaction old {};
        if (sigaction(sig, nullptr, &old) != 0) continue;
        if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;
        struct sigaction sa {};
        sa.sa_handler = remove_temp_files_and_die;
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, nullptr);
    }
}

int arm_slot(const std::string& path) {
    if (path.size() >= sizeof(TempSlot::path)) return -1;
    install_signal_handlers();
    for (int i = 0; i < static_cast<int>(std::size(g_temp_files)); ++i) {
        int expected = 0;
        TempSlot& s = g_temp_files[i];
        if (!s.state.compare_exchange_strong(expected, 1)) continue;
        std::memcpy(s.path, path.c_str(), path.size() + 1);
        s.state.store(2, std::memory_order_release);
        return i;
    }
    return -1;  // more files at once than slots: still removed on errors, not on a signal
}

std::string random_suffix() {
    std::random_device rd;
    const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    char buf[24];
    std::snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(r & 0xffffffffffffull));
    return buf;
}

}  // namespace

int open_regular_file(const std::string& path, size_t* size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int err = errno;
        ::close(fd);
        if (!S_ISREG(st.st_mode) && st.st_mode != 0) fail(path, ": not a regular file (", kind_of(st.st_mode), ")");
        fail(path, ": cannot stat: ", std::strerror(err));
    }
    // Reads of a regular file never block; clear the flag so nothing downstream sees EAGAIN.
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (size) *size = static_cast<size_t>(st.st_size);
    return fd;
}

std::string read_file(const std::string& path, size_t max_bytes) {
    size_t size = 0;
    const int fd = open_regular_file(path, &size);
    if (size > max_bytes) {
        ::close(fd);
        fail(path, ": ", size, " bytes is more than the ", max_bytes, " this file may hold");
    }
    std::string text(size, '\0');
    size_t done = 0;
    while (done < size) {
        const ssize_t n = ::read(fd, text.data() + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = errno;
            ::close(fd);
            fail(path, ": read failed after ", done, " of ", size,
                 " bytes: ", n < 0 ? std::strerror(err) : "unexpected end");
        }
        done += static_cast<size_t>(n);
    }
    ::close(fd);
    return text;
}

void check_output_path(const std::string& output, const std::vector<std::string>& inputs) {
    struct stat out {};
    if (::stat(output.c_str(), &out) != 0) return;  // a new file; creating its temporary says why if it cannot be
    if (!S_ISREG(out.st_mode)) {
        fail(output, ": exists and is ", kind_of(out.st_mode), "; refusing to replace it with the output");
    }
    for (const std::string& input : inputs) {
        struct stat in {};
        if (::stat(input.c_str(), &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
            fail(output, ": is the input ", input, " (the same file); refusing to overwrite it, choose another output");
        }
    }
}

AtomicFile::AtomicFile(std::string path, const std::vector<std::string>& inputs) : path_(std::move(path)) {
    check_output_path(path_, inputs);
    // Beside the output, so the rename stays within one file system.
    for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
        temp_ = path_ + ".strata-tmp-" + random_suffix();
        fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd_ < 0 && errno != EEXIST) fail(path_, ": cannot create ", temp_, ": ", std::strerror(errno));
    }
    if (fd_ < 0) fail(path_, ": cannot create a temporary file beside it (names taken)");
    slot_ = arm_slot(temp_);
    // Replacing a file keeps its permissions, as writing into it would have.
    struct stat old {};
    if (::stat(path_.c_str(), &old) == 0) fchmod(fd_, old.st_mode & 07777);
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
    if (slot_ >= 0) g_temp_files[slot_].state.store(0, std::memory_order_release);
}

void AtomicFile::write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t done = ::write(fd_, p, n);
        if (done < 0 && errno == EINTR) continue;
        if (done <= 0) fail(path_, ": write failed (", std::strerror(errno), "); the file was left as it was");
        p += done;
        n -= static_cast<size_t>(done);
    }
}

void AtomicFile::commit() {
    if (::fsync(fd_) != 0) fail(path_, ": write failed (", std::strerror(errno), "); the file was left as it was");
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) fail(path_, ": write failed (", std::strerror(errno), "); the file was left as it was");
    if (::rename(temp_.c_str(), path_.c_str()) != 0) {
        fail(path_, ": cannot rename ", temp_, " over it: ", std::strerror(errno));
    }
    committed_ = true;
    // The rename itself is durable only once the directory is.
    std::string dir = std::filesystem::path(path_).parent_path().string();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void write_file_atomically(const std::string& path, std::string_view text) {
    AtomicFile f(path);
    f.write(text.data(), text.size());
    f.commit();
}

}  // namespace strata
