import Glibc

/// `tandem install DIR`: what the `tandem-init` container runs to put this very binary into a
/// shared volume, where app containers find it for `tandem supervise`. The copy is written beside
/// the target and renamed over it, so a container never sees half a binary.
enum InstallCommand {
    static let help = helpText(
        usage: "tandem install DIR",
        summary: "Copies the running tandem binary to DIR/tandem (mode 0755), atomically.",
        specs: [])

    static func run(_ arguments: [String]) -> Int32 {
        let directory: String
        do throws(UsageError) {
            let parsed = try ParsedArguments.parse(arguments, specs: [helpOption])
            if parsed.flag("--help") {
                Console.out(help)
                return 0
            }
            guard parsed.positionals.count == 1 else {
                throw UsageError(message: parsed.positionals.isEmpty ? "name the folder to install into" : "only one folder, please")
            }
            directory = parsed.positionals[0]
        } catch {
            Console.error("tandem install: \(error.message)\nRun 'tandem install --help' for usage.\n")
            return 64
        }
        let target = directory.hasSuffix("/") ? directory + "tandem" : directory + "/tandem"
        do {
            try install(from: "/proc/self/exe", to: target)
            Console.error("tandem install: installed \(target)\n")
            return 0
        } catch {
            Console.error("tandem install: \(error)\n")
            return 1
        }
    }

    private static func install(from source: String, to target: String) throws(FileError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw FileError(path: source, errno: errno) }
        defer { close(input) }
        let temporary = target + ".tandem-\(getpid()).tmp"
        let output = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        guard output >= 0 else { throw FileError(path: temporary, errno: errno) }
        do throws(FileError) {
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw FileError(path: source, errno: errno)
                }
                if count == 0 { break }
                try FileSystem.writeAll(output, Array(buffer[0..<count]), path: temporary)
            }
            // The umask may have narrowed the mode given to open.
            guard fchmod(output, 0o755) == 0, fsync(output) == 0 else { throw FileError(path: temporary, errno: errno) }
        } catch {
            close(output)
            FileSystem.discard(temporary)
            throw error
        }
        close(output)
        do throws(FileError) {
            try FileSystem.commit(temporary, over: target)
        } catch {
            FileSystem.discard(temporary)
            throw error
        }
    }
}
