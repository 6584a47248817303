import Foundation

/// Where tests find data that lives outside the package.
public enum SharedFixtures {
    /// The real apiserver captures: `$TANDEM_FIXTURES`, else `shared/fixtures` beside the
    /// repository (how both developers' machines and CI lay it out).
    public static let root: String = {
        if let override = ProcessInfo.processInfo.environment["TANDEM_FIXTURES"] { return override }
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repository.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path
    }()
}
