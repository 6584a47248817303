import Document
import Testing

/// A deterministic generator (SplitMix64), so every failure reproduces from its seed.
private struct SeededRandom: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random documents and random edits of them, with keys that need pointer escaping.
private struct DocumentGenerator {
    var random: SeededRandom
    static let keys = ["a", "b", "name", "a/b", "~c", "~1", "", "x.y", "é"]

    mutating func scalar() -> JSON {
        switch Int.random(in: 0..<6, using: &random) {
        case 0: return nil
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .integer(Int.random(in: -3...3, using: &random))
        case 3: return .number(["1.5", "-0", "1e3", "2.50"].randomElement(using: &random)!)
        default: return .string(["", "x", "y", "a/b", "line\nbreak", "ü"].randomElement(using: &random)!)
        }
    }

    mutating func value(depth: Int) -> JSON {
        guard depth > 0 else { return scalar() }
        switch Int.random(in: 0..<4, using: &random) {
        case 0: return scalar()
        case 1:
            let count = Int.random(in: 0...5, using: &random)
            return .array((0..<count).map { _ in value(depth: depth - 1) })
        default:
            var object = JSONObject()
            for _ in 0..<Int.random(in: 0...5, using: &random) {
                object[Self.keys.randomElement(using: &random)!] = value(depth: depth - 1)
            }
            return .object(object)
        }
    }

    /// A copy of `value` with a few random local changes somewhere inside it.
    mutating func edited(_ value: JSON, depth: Int = 0) -> JSON {
        if Int.random(in: 0..<8, using: &random) == 0 { return self.value(depth: 2) }
        switch value {
        case .object(var object):
            switch Int.random(in: 0..<4, using: &random) {
            case 0: object[Self.keys.randomElement(using: &random)!] = self.value(depth: 2)
            case 1: if let key = object.keys.randomElement(using: &random) { object[key] = nil }
            default:
                for key in object.keys where Bool.random(using: &random) {
                    object[key] = edited(object[key]!, depth: depth + 1)
                }
            }
            return .object(object)
        case .array(var elements):
            switch Int.random(in: 0..<5, using: &random) {
            case 0: elements.append(self.value(depth: 2))
            case 1: if !elements.isEmpty { elements.removeLast(Int.random(in: 1...elements.count, using: &random)) }
            case 2: elements.insert(self.value(depth: 1), at: Int.random(in: 0...elements.count, using: &random))
            case 3: if !elements.isEmpty { elements.remove(at: Int.random(in: 0..<elements.count, using: &random)) }
            default:
                for index in elements.indices where Bool.random(using: &random) {
                    elements[index] = edited(elements[index], depth: depth + 1)
                }
            }
            return .array(elements)
        default:
            return scalar()
        }
    }
}

/// Checks the diff property, also through the patch's JSON text as the apiserver would get it.
private func expectDiffApplies(from source: JSON, to target: JSON, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONPatch {
    let patch = JSONPatch.diff(from: source, to: target)
    #expect(try patch.apply(to: source) == target, "\(source) -> \(target): \(patch.json)", sourceLocation: sourceLocation)
    let sent = try JSONPatch(json: JSONReader.parse(JSONWriter.write(patch.json)))
    #expect(sent == patch, sourceLocation: sourceLocation)
    return patch
}

private func collectPaths(_ value: JSON, at pointer: JSONPointer, into paths: inout [JSONPointer]) {
    switch value {
    case .object(let object):
        for (key, member) in object.members {
            paths.append(pointer.appending(key))
            collectPaths(member, at: pointer.appending(key), into: &paths)
        }
    case .array(let elements):
        for (index, element) in elements.enumerated() {
            paths.append(pointer.appending(index: index))
            collectPaths(element, at: pointer.appending(index: index), into: &paths)
        }
    default:
        break
    }
}

struct JSONDiffTests {
    @Test func equalDocumentsNeedNoOperations() throws {
        let value: JSON = ["a": [1, ["b": nil]], "c": "d"]
        #expect(JSONPatch.diff(from: value, to: value).isEmpty)
        #expect(JSONPatch.diff(from: ["a": 1, "b": 2], to: ["b": 2, "a": 1]).isEmpty)
    }

    static let expectedPatches: [(String, String, String)] = [
        (#"{"a":1}"#, #"{"a":2}"#, #"[{"op":"replace","path":"/a","value":2}]"#),
        (#"{"a":1,"b":2}"#, #"{"b":2,"c":3}"#, #"[{"op":"remove","path":"/a"},{"op":"add","path":"/c","value":3}]"#),
        (#"{"m":{"k/l":1}}"#, #"{"m":{"k/l":[]}}"#, #"[{"op":"replace","path":"/m/k~1l","value":[]}]"#),
        (#"[1,2]"#, #"[1,2,3,4]"#, #"[{"op":"add","path":"/-","value":3},{"op":"add","path":"/-","value":4}]"#),
        (#"[1,2,3,4]"#, #"[1,2]"#, #"[{"op":"remove","path":"/3"},{"op":"remove","path":"/2"}]"#),
        (#"[1,2,3]"#, #"[0,1,2,3]"#, #"[{"op":"add","path":"/0","value":0}]"#),
        (#"[1,2,3]"#, #"[1,3]"#, #"[{"op":"remove","path":"/1"}]"#),
        (#"[1,2,3]"#, #"[1,{"x":1},5,3]"#, #"[{"op":"replace","path":"/1","value":{"x":1}},{"op":"add","path":"/2","value":5}]"#),
        (#"[{"a":1},{"b":1}]"#, #"[{"a":2},{"b":1}]"#, #"[{"op":"replace","path":"/0/a","value":2}]"#),
        (#"{"a":[1]}"#, #"{"a":{"0":1}}"#, #"[{"op":"replace","path":"/a","value":{"0":1}}]"#),
        (#"[{"name":"app","image":"a:1"}]"#, #"[{"name":"proxy"},{"name":"app","image":"a:2"}]"#,
         #"[{"op":"replace","path":"/0/image","value":"a:2"},{"op":"add","path":"/0","value":{"name":"proxy"}}]"#),
        (#"[{"name":"a"},{"name":"b","v":1},{"name":"c"}]"#, #"[{"name":"a"},{"name":"c","v":2}]"#,
         #"[{"op":"add","path":"/2/v","value":2},{"op":"remove","path":"/1"}]"#),
        // Reordered items are compared by index: there is no move detection.
        (#"[{"name":"a","v":1},{"name":"b"}]"#, #"[{"name":"b"},{"name":"a","v":1}]"#,
         #"[{"op":"replace","path":"/0/name","value":"b"},{"op":"remove","path":"/0/v"},{"op":"replace","path":"/1/name","value":"a"},{"op":"add","path":"/1/v","value":1}]"#),
        (#"1"#, #""x""#, #"[{"op":"replace","path":"","value":"x"}]"#),
        (#"{"n":1}"#, #"{"n":1.0}"#, #"[{"op":"replace","path":"/n","value":1.0}]"#),
        // Indices on both sides of the ones whose tokens are made in advance.
        (#"[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39]"#, #"[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,-31,-32,33,34,35,36,37]"#,
         #"[{"op":"replace","path":"/31","value":-31},{"op":"replace","path":"/32","value":-32},{"op":"remove","path":"/39"},{"op":"remove","path":"/38"}]"#),
    ]

    @Test(arguments: expectedPatches)
    func producesSmallPatches(source: String, target: String, expected: String) throws {
        let patch = try expectDiffApplies(from: JSONReader.parse(source), to: JSONReader.parse(target))
        #expect(JSONWriter.string(patch.json) == expected)
    }

    @Test func diffAppliesOnRandomDocuments() throws {
        for seed in UInt64(0)..<1500 {
            var generator = DocumentGenerator(random: SeededRandom(state: seed))
            let source = generator.value(depth: 4)
            let target = seed % 5 == 0 ? generator.value(depth: 4) : generator.edited(source)
            let patch = try expectDiffApplies(from: source, to: target)
            // A re-read target shares no storage with the source, so nothing is skipped unseen.
            let reread = try JSONReader.parse(JSONWriter.write(target))
            #expect(try expectDiffApplies(from: source, to: reread) == patch)
        }
    }

    /// Random operations on random documents either apply or throw; none traps.
    @Test func randomPatchesApplyOrThrow() throws {
        var applied = 0
        for seed in UInt64(0)..<2000 {
            var generator = DocumentGenerator(random: SeededRandom(state: seed))
            let document = generator.value(depth: 3)
            var paths = [JSONPointer.root]
            collectPaths(document, at: .root, into: &paths)
            func randomPath() -> JSONPointer {
                let base = paths.randomElement(using: &generator.random)!
                switch Int.random(in: 0..<4, using: &generator.random) {
                case 0: return base.appending(["-", "0", "7", "01", "x", ""].randomElement(using: &generator.random)!)
                default: return base
                }
            }
            let value = generator.value(depth: 1)
            let operation: JSONPatchOperation = switch Int.random(in: 0..<6, using: &generator.random) {
            case 0: .add(path: randomPath(), value: value)
            case 1: .remove(path: randomPath())
            case 2: .replace(path: randomPath(), value: value)
            case 3: .move(from: randomPath(), path: randomPath())
            case 4: .copy(from: randomPath(), path: randomPath())
            default: .test(path: randomPath(), value: value)
            }
            if let result = try? JSONPatch([operation]).apply(to: document) {
                applied += 1
                _ = try expectDiffApplies(from: document, to: result)
            }
        }
        #expect(applied > 500)
    }

    @Test func diffAppliesOnEditedFixturePods() throws {
        for name in ["a-pod-create-two-containers", "b-pod-create-generatename-ownerrefs", "d-pod-update-kubectl-label",
                     "h-pod-create-kubectl-apply-client-side", "i-pod-create-kubectl-apply-server-side"] {
            let pod = try JSONFixtures.pod(name)
            #expect(JSONPatch.diff(from: pod, to: pod).isEmpty)
            for seed in UInt64(0)..<40 {
                var generator = DocumentGenerator(random: SeededRandom(state: seed))
                _ = try expectDiffApplies(from: pod, to: generator.edited(pod))
            }
        }
    }

    @Test func diffOfAnUpdateRequestNamesTheChangedLabel() throws {
        let review = try JSONReader.parse(JSONFixtures.read(
            JSONFixtures.root + "/kube-apiserver-1.28.4/admission-requests/d-pod-update-kubectl-label.request.json"))
        let old = try review.value(at: JSONPointer(parsing: "/request/oldObject"))
        let new = try review.value(at: JSONPointer(parsing: "/request/object"))
        let patch = try expectDiffApplies(from: old, to: new)
        #expect(patch.operations.count < 10)
        #expect(patch.operations.contains { $0.path.tokens.starts(with: ["metadata", "labels"]) })
    }

    /// Injection-sized changes to the 250 KB pod with 1,500 environment variables give 1-3
    /// operations (the time it takes is Hack/bench/inject's business).
    @Test func smallChangesToALargePodGiveSmallPatches() throws {
        let pod = try JSONFixtures.pod("f-pod-create-1500-env")
        let env = try JSONPointer(parsing: "/spec/containers/0/env")
        let variables = try pod.value(at: env).arrayValue ?? []
        #expect(variables.count == 1500)
        let variable: JSON = ["name": "TANDEM_PROXY", "value": "127.0.0.1:15001"]
        let sidecar: JSON = ["name": "tandem-proxy", "image": "tandem:dev", "args": ["proxy"]]

        let appendedEnv = try JSONPatch([.add(path: env.appending("-"), value: variable)]).apply(to: pod)
        let insertedEnv = try JSONPatch([.add(path: env.appending(index: 700), value: variable)]).apply(to: pod)
        let addedSidecar = try JSONPatch([
            .add(path: JSONPointer(parsing: "/spec/containers/0"), value: sidecar),
            .add(path: JSONPointer(parsing: "/spec/containers/1/env/-"), value: variable),
            .add(path: JSONPointer(parsing: "/metadata/annotations"), value: ["tandem.io/status": "injected"]),
        ]).apply(to: pod)

        let patches = try [appendedEnv, insertedEnv, addedSidecar].map { try expectDiffApplies(from: pod, to: $0) }
        #expect(patches.map(\.operations.count) == [1, 1, 3])
        #expect(JSONWriter.string(patches[0].json) ==
            #"[{"op":"add","path":"/spec/containers/0/env/-","value":{"name":"TANDEM_PROXY","value":"127.0.0.1:15001"}}]"#)
        #expect(patches[1].operations == [.add(path: env.appending(index: 700), value: variable)])
        #expect(patches[2].operations.contains(.add(path: try JSONPointer(parsing: "/spec/containers/0"), value: sidecar)))
    }
}
