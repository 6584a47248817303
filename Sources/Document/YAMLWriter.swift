import CYAML

/// Writes JSON values as block-style YAML through libyaml's emitter, in the layout kubectl uses
/// (two-space indentation, list items level with their key). Our resolver, not libyaml, decides
/// which strings need quotes, so `"8080"` and `"yes"` read back as strings.
public enum YAMLWriter {
    /// One document, without a `---` marker, ending in a line break.
    public static func write(_ value: JSON) -> [UInt8] {
        var emitter = Emitter()
        emitter.emitDocument(value)
        return emitter.finish()
    }

    /// The lines of `value` written as a document, for splicing into other text at an indentation.
    /// A scalar comes out as its single token (`"8080"`, `'{"a":1}'`, `|-` blocks stay multi-line).
    static func lines(of value: JSON) -> [ArraySlice<UInt8>] {
        let bytes = write(value)
        var text = bytes[...]
        // libyaml ends an open-ended top-level scalar with a `...` document end marker.
        if text.hasSuffix("\n...\n") { text = text.dropLast(4) }
        if text.starts(with: "--- ".utf8) { text = text.dropFirst(4) }
        if text.last == UInt8(ascii: "\n") { text = text.dropLast() }
        return text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    }
}

extension ArraySlice<UInt8> {
    fileprivate func hasSuffix(_ suffix: String) -> Bool {
        let tail = Array(suffix.utf8)
        return count >= tail.count && self.suffix(tail.count).elementsEqual(tail)
    }
}

/// Owns a libyaml emitter writing into a Swift buffer.
private struct Emitter {
    private final class Output {
        var bytes: [UInt8] = []
    }

    /// On the heap: libyaml keeps pointers into its emitter state between calls.
    private let emitter = UnsafeMutablePointer<yaml_emitter_t>.allocate(capacity: 1)
    private let output = Output()
    private let context: UnsafeMutableRawPointer

    init() {
        context = Unmanaged.passRetained(output).toOpaque()
        emitter.initialize(to: yaml_emitter_t())
        yaml_emitter_initialize(emitter)
        yaml_emitter_set_unicode(emitter, 1)
        yaml_emitter_set_width(emitter, -1)
        yaml_emitter_set_indent(emitter, 2)
        yaml_emitter_set_output(emitter, { context, buffer, size in
            guard let context, let buffer else { return 0 }
            let output = Unmanaged<Output>.fromOpaque(context).takeUnretainedValue()
            output.bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
            return 1
        }, context)
    }

    mutating func emitDocument(_ value: JSON) {
        var event = yaml_event_t()
        yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING)
        yaml_emitter_emit(emitter, &event)
        yaml_document_start_event_initialize(&event, nil, nil, nil, 1)
        yaml_emitter_emit(emitter, &event)
        emit(value)
        yaml_document_end_event_initialize(&event, 1)
        yaml_emitter_emit(emitter, &event)
        yaml_stream_end_event_initialize(&event)
        yaml_emitter_emit(emitter, &event)
    }

    mutating func finish() -> [UInt8] {
        yaml_emitter_flush(emitter)
        yaml_emitter_delete(emitter)
        emitter.deallocate()
        let bytes = output.bytes
        Unmanaged<Output>.fromOpaque(context).release()
        return bytes
    }

    private mutating func emit(_ value: JSON) {
        var event = yaml_event_t()
        switch value {
        case .null:
            scalar("null", style: YAML_PLAIN_SCALAR_STYLE)
        case .bool(let flag):
            scalar(flag ? "true" : "false", style: YAML_PLAIN_SCALAR_STYLE)
        case .number(let text):
            scalar(text, style: YAML_PLAIN_SCALAR_STYLE)
        case .string(let text):
            scalar(text, style: Self.style(for: text))
        case .array(let items):
            let style = items.isEmpty ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE
            yaml_sequence_start_event_initialize(&event, nil, nil, 1, style)
            yaml_emitter_emit(emitter, &event)
            for item in items { emit(item) }
            yaml_sequence_end_event_initialize(&event)
            yaml_emitter_emit(emitter, &event)
        case .object(let object):
            let style = object.isEmpty ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE
            yaml_mapping_start_event_initialize(&event, nil, nil, 1, style)
            yaml_emitter_emit(emitter, &event)
            for (key, member) in object.members {
                scalar(key, style: Self.style(for: key))
                emit(member)
            }
            yaml_mapping_end_event_initialize(&event)
            yaml_emitter_emit(emitter, &event)
        }
    }

    /// Multi-line text as a literal block; text that would read back as another type
    /// double-quoted; everything else as libyaml sees fit (plain where it can).
    private static func style(for text: String) -> yaml_scalar_style_t {
        if text.utf8.contains(UInt8(ascii: "\n")) { return YAML_LITERAL_SCALAR_STYLE }
        if ScalarResolver.mustQuote(text) { return YAML_DOUBLE_QUOTED_SCALAR_STYLE }
        return YAML_ANY_SCALAR_STYLE
    }

    private mutating func scalar(_ text: String, style: yaml_scalar_style_t) {
        var event = yaml_event_t()
        var text = text
        text.withUTF8 { utf8 in
            let plainImplicit: Int32 = style == YAML_PLAIN_SCALAR_STYLE || style == YAML_ANY_SCALAR_STYLE ? 1 : 0
            _ = yaml_scalar_event_initialize(&event, nil, nil, UnsafeMutablePointer(mutating: utf8.baseAddress ?? UnsafePointer(bitPattern: 1)!),
                                             Int32(utf8.count), plainImplicit, 1, style)
        }
        yaml_emitter_emit(emitter, &event)
    }
}
