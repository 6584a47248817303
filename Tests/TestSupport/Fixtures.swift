import Glibc

/// The shared wire fixtures (`shared/fixtures/`), captured from a real kube-apiserver.
///
/// `TANDEM_FIXTURES` names the folder directly; otherwise the first `shared/fixtures` found
/// beside the repository or one of its parents (a CI clone has `shared/` as a sibling; a git
/// worktree sits one level deeper).
public enum SharedFixtures {
    public static let root: String? = {
        if let path = getenv("TANDEM_FIXTURES").map({ String(cString: $0) }), !path.isEmpty { return path }
        var directory = repositoryRoot
        while directory.count > 1 {
            directory = parent(of: directory)
            let candidate = directory + "/shared/fixtures"
            if isDirectory(candidate) { return candidate }
        }
        return nil
    }()

    /// The repository holding this file: `<repo>/Tests/TestSupport/Fixtures.swift`.
    public static let repositoryRoot: String = parent(of: parent(of: parent(of: "\(#filePath)")))

    /// `relative` under the fixtures root, or a failure naming where it looked.
    public static func path(_ relative: String) throws -> String {
        guard let root else { throw FixtureError("shared/fixtures not found above \(repositoryRoot); set TANDEM_FIXTURES") }
        return root + "/" + relative
    }

    public static func bytes(_ relative: String) throws -> [UInt8] {
        try readFile(path(relative))
    }

    /// File names in a fixture folder matching `suffix`, sorted.
    public static func files(in relative: String, suffix: String) throws -> [String] {
        let directory = try path(relative)
        guard let handle = opendir(directory) else { throw FixtureError("cannot open \(directory)") }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(suffix) { names.append(name) }
        }
        return names.sorted()
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The whole file, or an error naming it.
public func readFile(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw FixtureError("cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return bytes
}
