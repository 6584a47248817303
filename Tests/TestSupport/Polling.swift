/// Polls `condition` every few milliseconds until it holds or `timeout` passes; true when it held.
/// The pause suspends rather than blocks, so tests running in parallel do not starve each other.
@discardableResult
public func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}
