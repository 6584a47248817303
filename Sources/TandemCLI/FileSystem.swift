import Glibc

/// A failed file operation, naming the path and the system's reason.
struct FileError: Error, CustomStringConvertible {
    let path: String
    let reason: String

    init(path: String, errno code: Int32) {
        self.path = path
        reason = String(cString: strerror(code))
    }

    init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    var description: String { "\(path): \(reason)" }
}

/// The few file-system calls the CLI needs, on Glibc, each retried on EINTR.
enum FileSystem {
    static func isDirectory(_ path: String) throws(FileError) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { throw FileError(path: path, errno: errno) }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func readFile(_ path: String) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, errno: errno) }
        defer { close(fd) }
        return try readAll(fd, path: path)
    }

    /// Reads to the end straight into the array's own storage: for a regular file, whose size is
    /// known, one allocation and no copying (a byte more than its size, so the read that finds
    /// the end fits); for anything else (a pipe), storage that doubles when full.
    static func readAll(_ fd: Int32, path: String) throws(FileError) -> [UInt8] {
        var info = stat()
        let size = fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG ? Int(info.st_size) : 0
        var bytes: [UInt8] = []
        var capacity = max(size + 1, 1 << 16)
        while true {
            var failure: Int32 = 0
            var ended = false
            let previous = bytes
            bytes = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                count = buffer.initialize(fromContentsOf: previous)
                while count < buffer.count {
                    let got = Glibc.read(fd, buffer.baseAddress! + count, buffer.count - count)
                    if got < 0 {
                        if errno == EINTR { continue }
                        failure = errno
                        return
                    }
                    if got == 0 {
                        ended = true
                        return
                    }
                    count += got
                }
            }
            if failure != 0 { throw FileError(path: path, errno: failure) }
            if ended { return bytes }
            capacity *= 2
        }
    }

    /// Every `.yaml`, `.yml` and `.json` file below `directory`, in a stable (sorted) order.
    static func manifestFiles(under directory: String) throws(FileError) -> [String] {
        guard let handle = opendir(directory) else { throw FileError(path: directory, errno: errno) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(handle)
        var files: [String] = []
        for name in names.sorted() {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            if try isDirectory(path) {
                files.append(contentsOf: try manifestFiles(under: path))
            } else if name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.hasSuffix(".json") {
                files.append(path)
            }
        }
        return files
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(FileError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, errno: errno)
            }
            offset += count
        }
    }

    /// Writes a sibling temporary file with the same permissions, synced to disk; `commit`
    /// renames it over the original.
    static func stage(_ bytes: [UInt8], for path: String) throws(FileError) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { throw FileError(path: path, errno: errno) }
        let temporary = path + ".tandem-\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, info.st_mode & 0o7777)
        guard fd >= 0 else { throw FileError(path: temporary, errno: errno) }
        do throws(FileError) {
            try writeAll(fd, bytes, path: temporary)
            guard fsync(fd) == 0 else { throw FileError(path: temporary, errno: errno) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        return temporary
    }

    static func commit(_ temporary: String, over path: String) throws(FileError) {
        guard rename(temporary, path) == 0 else { throw FileError(path: path, errno: errno) }
    }

    static func discard(_ temporary: String) {
        unlink(temporary)
    }
}

/// Writes to standard output and standard error (fd 1 and 2; Swift 6 cannot name `stdout`).
enum Console {
    static func out(_ bytes: [UInt8]) {
        try? FileSystem.writeAll(1, bytes, path: "standard output")
    }

    static func out(_ text: String) { out(Array(text.utf8)) }

    static func error(_ text: String) {
        try? FileSystem.writeAll(2, Array(text.utf8), path: "standard error")
    }
}
