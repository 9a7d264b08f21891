// Input files opened so that a FIFO or a device never blocks or feeds a parser, and output files
// written so that nothing is ever half-written or destroyed: the bytes go to a temporary file
// beside the output (created O_EXCL|O_NOFOLLOW under a random name, so a planted symlink is never
// followed), which is fsynced and renamed over the output only when complete and removed on every
// error and on SIGINT/SIGTERM. An output that is one of the inputs (same device and inode, however
// the paths are spelled) or an existing non-regular file (/dev/null) is refused before anything
// is written.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

// Opens `path` read-only and returns the descriptor; throws Error naming the file unless it is a
// regular file (opened with O_NONBLOCK, so a FIFO is refused instead of waiting for a writer).
// `size` receives the file's size.
int open_regular_file(const std::string& path, size_t* size = nullptr);

// The whole file. Throws Error naming it when it cannot be read, is not a regular file or holds
// more than max_bytes (a JSON or template file of a GiB is not a model's).
std::string read_file(const std::string& path, size_t max_bytes = size_t{1} << 30);

// Throws Error when `output` may not be written: it exists and is not a regular file, or it is
// the same file as one of `inputs`.
void check_output_path(const std::string& output, const std::vector<std::string>& inputs);

class AtomicFile {
public:
    // Checks the output (check_output_path) and creates the temporary file beside it.
    explicit AtomicFile(std::string path, const std::vector<std::string>& inputs = {});
    ~AtomicFile();  // removes the temporary file unless commit() succeeded
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    const std::string& path() const { return path_; }
    const std::string& temp_path() const { return temp_; }
    // Throws Error naming the output and the system's reason (a full disk: ENOSPC).
    void write(const void* data, size_t n);
    // fsync, then rename over the output (and fsync its directory).
    void commit();

private:
    std::string path_, temp_;
    int fd_ = -1;
    int slot_ = -1;  // this file's entry in the list the signal handler removes
    bool committed_ = false;
};

// `text` written to `path` through an AtomicFile (chat /save).
void write_file_atomically(const std::string& path, std::string_view text);

}  // namespace strata
