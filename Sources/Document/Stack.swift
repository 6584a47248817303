/// A stack in memory the readers manage themselves, for what waits while they read: a YAML
/// document's nodes until it ends, a YAML collection's or JSON object's or array's entries until
/// it closes, the collections still open, the decoded text of a JSON string with escapes. Pushing
/// and reading need no uniqueness or bounds checks, as an array's do (an append of a few bytes to
/// an array cost a hundred instructions), and a closing collection's entries are moved, not
/// copied, into storage of their exact size.
struct Stack<Element>: ~Copyable {
    private var base: UnsafeMutablePointer<Element>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    /// The element at `position`, in place.
    subscript(position: Int) -> Element {
        unsafeAddress { UnsafePointer(base + position) }
        unsafeMutableAddress { base + position }
    }

    @inline(__always)
    mutating func push(_ element: consuming Element) {
        if count == capacity { grow() }
        (base + count).initialize(to: element)
        count += 1
    }

    private mutating func grow() {
        let grown = UnsafeMutablePointer<Element>.allocate(capacity: capacity * 2)
        grown.moveInitialize(from: base, count: count)
        base.deallocate()
        base = grown
        capacity *= 2
    }

    /// Pushes the values of `elements`, in one copy.
    @inline(__always)
    mutating func append(contentsOf elements: UnsafeBufferPointer<Element>) {
        while capacity - count < elements.count { grow() }
        guard let source = elements.baseAddress else { return }
        (base + count).initialize(from: source, count: elements.count)
        count += elements.count
    }

    /// Takes the top value off; nil when there is none.
    mutating func popLast() -> Element? {
        guard count > 0 else { return nil }
        count -= 1
        return (base + count).move()
    }

    /// Drops the values from `start` to the top.
    mutating func removeAll(from start: Int) {
        (base + start).deinitialize(count: count - start)
        count = start
    }

    /// The values from `start` to the top, for looking at without copying them.
    func values(from start: Int) -> UnsafeBufferPointer<Element> {
        UnsafeBufferPointer(start: base + start, count: count - start)
    }

    /// Moves the values from `start` to the top into `target`, in one copy of their bytes.
    mutating func moveAll(from start: Int, to target: UnsafeMutablePointer<Element>) {
        target.moveInitialize(from: base + start, count: count - start)
        count = start
    }

    /// The values from `start` on, moved off the stack into an array of exactly their number,
    /// in one copy of their bytes. Through `Array.init` of a collection, which makes storage of
    /// an exact size in code specialised for the element: `reserveCapacity` on an empty array
    /// takes the path that grows an array (about twice the instructions, and then an append for
    /// each value), and `Array(unsafeUninitializedCapacity:)` looks up the array's type at run
    /// time.
    mutating func popAll(from start: Int) -> [Element] {
        let moved = Array(Moved(base: base + start, count: count - start))
        count = start
        return moved
    }
}

/// The values of a stack that `popAll` takes: `Array.init` moves them into its storage, whole.
/// Read any other way, they are copied.
private struct Moved<Element>: RandomAccessCollection {
    let base: UnsafeMutablePointer<Element>
    let count: Int

    var startIndex: Int { 0 }
    var endIndex: Int { count }
    subscript(position: Int) -> Element { base[position] }

    func _copyContents(initializing buffer: UnsafeMutableBufferPointer<Element>) -> (IndexingIterator<Self>, Int) {
        buffer.baseAddress!.moveInitialize(from: base, count: count)
        return (Moved(base: base, count: 0).makeIterator(), count)
    }
}
