import Foundation

/// Where tests find data that lives outside the package.
public enum SharedFixtures {
    /// The real apiserver captures: `$TANDEM_FIXTURES`, else `shared/fixtures` beside the
    /// repository (how both developers' machines and CI lay it out) or beside one of its parents
    /// (a git worktree sits a level deeper).
    public static let root: String = {
        if let override = ProcessInfo.processInfo.environment["TANDEM_FIXTURES"] { return override }
        var folder = URL(fileURLWithPath: repositoryRoot)
        let beside = folder.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path
        while folder.path != "/" {
            folder = folder.deletingLastPathComponent()
            let candidate = folder.appendingPathComponent("shared/fixtures").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        return beside
    }()

    /// The repository holding this file: `<repo>/Tests/TestSupport/TestSupport.swift`.
    public static let repositoryRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}
