import Glibc

/// Reading the shared wire fixtures captured from a real kube-apiserver.
extension SharedFixtures {
    /// `relative` under the fixtures root, or a failure naming where it looked.
    public static func path(_ relative: String) throws -> String {
        guard isDirectory(root) else { throw FixtureError("shared/fixtures not found above \(repositoryRoot); set TANDEM_FIXTURES") }
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
