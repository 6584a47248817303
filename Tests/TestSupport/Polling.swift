/// Polls `condition` every few milliseconds until it holds or `timeout` passes; true when it held.
/// The pause suspends rather than blocks, so tests running in parallel do not starve each other.
/// The default is generous: a condition that holds ends the wait at once, and on a loaded
/// machine (the whole suite in parallel beside other work) 5 s was sometimes too little.
@discardableResult
public func eventually(timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}
