import Foundation
import Testing
@testable import Document

/// Rewrites the first document of `text` with `change` applied to its value, checks the result
/// reads back as the changed value, and returns it.
private func rewritten(_ text: String, _ change: (inout JSON) -> Void) throws -> String {
    let bytes = Array(text.utf8)
    let document = try #require(try YAMLReader.read(bytes).first)
    var value = document.value
    change(&value)
    var text = SplicedText(source: bytes)
    YAMLRewriter().rewrite(document, in: bytes, to: value, into: &text)
    let output = text.bytes
    let reread = try #require(try YAMLReader.read(output).first)
    #expect(reread.value == value, "rewritten text reads back differently:\n\(String(decoding: output, as: UTF8.self))")
    return String(decoding: output, as: UTF8.self)
}

/// Sets a value at a key path, creating objects on the way.
private func set(_ value: JSON, at path: [String], in root: inout JSON) {
    guard let key = path.first else {
        root = value
        return
    }
    var object = root.objectValue ?? JSONObject()
    var child = object[key] ?? .object(JSONObject())
    set(value, at: Array(path.dropFirst()), in: &child)
    object[key] = child
    root = .object(object)
}

private let deployment = """
# The web tier.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # stable name
  labels: {app: web}
spec:
  replicas: 3
  template:
    metadata:
      labels:
        app: web
    spec:
      # app first
      containers:
      - name: app
        image: "nginx:1.25"
        ports:
        - containerPort: 8080 # http
      - name: worker
        image: worker
        command: ['run', "--fast"]

"""

@Suite struct YAMLRewriterTests {
    @Test func unchangedDocumentIsCopiedByteForByte() throws {
        #expect(try rewritten(deployment) { _ in } == deployment)
    }

    @Test func newAnnotationMappingGoesAfterTheLastKeyAndUndoesExactly() throws {
        let path = ["spec", "template", "metadata", "annotations", "tandem.io/status"]
        let injected = try rewritten(deployment) { set("{\"v\":1}", at: path, in: &$0) }
        #expect(injected == deployment.replacingOccurrences(
            of: "        app: web\n    spec:",
            with: "        app: web\n      annotations:\n        tandem.io/status: '{\"v\":1}'\n    spec:"))
        let restored = try rewritten(injected) { value in
            var template = value["spec"]!["template"]!["metadata"]!.objectValue!
            template["annotations"] = nil
            set(.object(template), at: ["spec", "template", "metadata"], in: &value)
        }
        #expect(restored == deployment)
    }

    @Test func prependedAndAppendedListItemsKeepOldItemsAndComments() throws {
        let path = ["spec", "template", "spec", "containers"]
        let original = try #require(try YAMLReader.read(deployment).first).value
        var containers = original["spec"]!["template"]!["spec"]!["containers"]!.arrayValue!
        containers.insert(["name": "tandem-proxy", "image": "tandem:1", "args": ["proxy"]], at: 0)
        containers.append(["name": "last", "image": "x"])
        let injected = try rewritten(deployment) { set(.array(containers), at: path, in: &$0) }
        #expect(injected.contains("""
              # app first
              containers:
              - name: tandem-proxy
                image: tandem:1
                args:
                - proxy
              - name: app
                image: "nginx:1.25"
                ports:
                - containerPort: 8080 # http
              - name: worker
                image: worker
                command: ['run', "--fast"]
              - name: last
                image: x

        """))
        let restored = try rewritten(injected) { set(original["spec"]!["template"]!["spec"]!["containers"]!, at: path, in: &$0) }
        #expect(restored == deployment)
    }

    @Test func changedItemIsEditedInPlaceByName() throws {
        let original = try #require(try YAMLReader.read(deployment).first).value
        var containers = original["spec"]!["template"]!["spec"]!["containers"]!.arrayValue!
        var worker = containers[1].objectValue!
        worker["command"] = ["/tandem/bin/tandem", "supervise", "--", "run", "--fast"]
        worker["volumeMounts"] = [["name": "tandem-bin", "mountPath": "/tandem/bin"]]
        containers[1] = .object(worker)
        let path = ["spec", "template", "spec", "containers"]
        let injected = try rewritten(deployment) { set(.array(containers), at: path, in: &$0) }
        #expect(injected.contains("""
              - name: worker
                image: worker
                command: [/tandem/bin/tandem, supervise, --, 'run', "--fast"]
                volumeMounts:
                - name: tandem-bin
                  mountPath: /tandem/bin

        """))
        #expect(injected.contains("- containerPort: 8080 # http\n"))
        let restored = try rewritten(injected) { set(original["spec"]!["template"]!["spec"]!["containers"]!, at: path, in: &$0) }
        #expect(restored == deployment)
    }

    @Test func scalarChangeKeepsKeyAndComment() throws {
        let output = try rewritten(deployment) { set("api", at: ["metadata", "name"], in: &$0) }
        #expect(output.contains("  name: api   # stable name\n"))
        let number = try rewritten(deployment) { set("3", at: ["spec", "replicas"], in: &$0) }
        #expect(number.contains("  replicas: \"3\"\n"))
    }

    @Test func emptyFlowMappingAndEmptyValueAreReplaced() throws {
        let text = "metadata:\n  annotations: {}\n  labels:\nspec: {}\n"
        let output = try rewritten(text) { value in
            set("x", at: ["metadata", "annotations", "a"], in: &value)
            set("y", at: ["metadata", "labels"], in: &value)
        }
        #expect(output == "metadata:\n  annotations:\n    a: x\n  labels: \"y\"\nspec: {}\n")
    }

    @Test func flowCollectionsAreEditedInFlowStyle() throws {
        let text = "labels: {app: web, tier: \"1\"}\nargs: [\"--port\", 80]  # ports\n"
        let output = try rewritten(text) { value in
            set("x,y", at: ["labels", "team"], in: &value)
            set(["-v", "--port", 80], at: ["args"], in: &value)
        }
        #expect(output == "labels: {app: web, tier: \"1\", team: \"x,y\"}\nargs: [-v, \"--port\", 80]  # ports\n")
    }

    @Test func fourSpaceIndentedListsStayConsistent() throws {
        let text = "spec:\n    containers:\n        -   name: a\n            image: a\n    volumes: []\n"
        let output = try rewritten(text) { value in
            var containers = value["spec"]!["containers"]!.arrayValue!
            containers.append(["name": "b", "image": "b"])
            set(.array(containers), at: ["spec", "containers"], in: &value)
        }
        #expect(output == "spec:\n    containers:\n        -   name: a\n            image: a\n        - name: b\n          image: b\n    volumes: []\n")
    }

    @Test func crlfSourceGetsCRLFInsertions() throws {
        let text = "a: 1\r\nb:\r\n  c: 2\r\n"
        let output = try rewritten(text) { set("3", at: ["b", "d"], in: &$0) }
        #expect(output == "a: 1\r\nb:\r\n  c: 2\r\n  d: \"3\"\r\n")
    }

    @Test func removingTheFirstKeyKeepsTheRest() throws {
        let text = "m:\n  a: 1\n  # about b\n  b: 2\n"
        let output = try rewritten(text) { value in
            var object = value["m"]!.objectValue!
            object["a"] = nil
            set(.object(object), at: ["m"], in: &value)
        }
        #expect(output == "m:\n  b: 2\n")
    }

    @Test func mergeKeysFallBackToFreshText() throws {
        let text = "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n"
        let output = try rewritten(text) { set("3", at: ["m", "z"], in: &$0) }
        #expect(output.hasPrefix("base: &b {x: 1}\nm:\n"))
    }

    @Test func equalValuesInAnotherOrderAreWrittenInTheirOwnOrder() throws {
        let bytes = Array("a: 1\n---\na: 1\n".utf8)
        let documents = try YAMLReader.read(bytes)
        let rewriter = YAMLRewriter()
        var output = SplicedText(source: bytes)
        for (document, members) in zip(documents, [[("p", JSON(1)), ("q", 2)], [("q", 2), ("p", 1)]]) {
            var value = document.value
            set(.object(JSONObject(members)), at: ["m"], in: &value)
            rewriter.rewrite(document, in: bytes, to: value, into: &output)
        }
        #expect(String(decoding: output.bytes, as: UTF8.self) == "a: 1\nm:\n  p: 1\n  q: 2\n---\na: 1\nm:\n  q: 2\n  p: 1\n")
    }

    @Test func listMatchingIsLinearAndOrdered() {
        let old: [JSON] = [["name": "a"], ["name": "b"], "x", "y"]
        let new: [JSON] = [["name": "p"], ["name": "a"], ["name": "b", "v": 1], "y", "z"]
        #expect(Splicer.match(old: old, new: new) == [nil, 0, 1, 3, nil])
    }
}
