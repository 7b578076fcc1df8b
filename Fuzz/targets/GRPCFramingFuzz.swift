// libFuzzer target: the gRPC message framing of a call's byte stream (Sources/Host/GRPC), as a peer's DATA frames
// deliver it, split anywhere (empty frames included), with a small message size limit.
//
// `GRPCMessageBoundaryTracker` (pass-through calls) and `GRPCMessageReassembler` (calls a plugin reads) see the same
// frames and are checked against a model that reads the whole stream at once: after every frame both have seen
// exactly the messages that ended in it, both stand at a message boundary at the same places, both refuse the first
// message over the limit on the frame that completes its prefix, and every message reassembled is whole (prefix and
// declared length), no larger than the limit, byte for byte the stream's, and a slice of its frame when it lay
// inside one. Compressed messages also go through `GRPCMessageInflater` with a small limit, compared with an
// inflate of the same bytes under a large one. Built and run by scripts/fuzz.
//
// Layout: byte 0 = the message limit (0...254 bytes; 255: 4 KiB); byte 1 = the inflate limit / 4; byte 2 = the
// number of frame sizes that follow, minus 1 (low 3 bits); then that many frame sizes, used in turn (0: an empty
// frame); the rest is the stream.

import NIOCore

@testable import Host

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGRPCFraming(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard count >= 3 else { return 0 }
    let limit = bytes[0] == 255 ? 4096 : Int(bytes[0])
    let inflateLimit = Int(bytes[1]) * 4
    let sizeCount = Int(bytes[2] & 7) + 1
    guard count >= 3 + sizeCount else { return 0 }
    let sizes = bytes[3..<(3 + sizeCount)].map(Int.init)
    let stream = Array(bytes[(3 + sizeCount)...])
    let model = StreamModel(stream, limit: limit)

    var tracker = GRPCMessageBoundaryTracker(maxMessageBytes: limit)
    var reassembler = GRPCMessageReassembler(maxMessageBytes: limit)
    var messages: [ByteBuffer] = []
    var offset = 0
    var frames = 0
    // Empty frames make no progress: bound their number.
    while offset < stream.count, frames < 2 * stream.count + 8 {
        let size = min(sizes[frames % sizes.count], stream.count - offset)
        frames += 1
        let frame = ByteBuffer(bytes: stream[offset..<(offset + size)])
        let frameStart = offset
        offset += size
        let alreadyOut = messages.count
        let tracked = tracker.consume(frame)
        let refused = reassembler.consume(frame, into: &messages)
        if let tooLarge = model.tooLarge, tooLarge.prefixEnd <= offset {
            // The prefix of the first oversized message is complete: both refuse it, on this frame.
            require(tracked == .messageTooLarge(length: tooLarge.length), "tracker: \(tracked), model: \(tooLarge)")
            require(refused == tooLarge.length, "the reassembler refused \(refused as Any), model: \(tooLarge)")
            require(tooLarge.prefixEnd > frameStart, "refused on a later frame than the one completing the prefix")
            checkMessages(
                messages, from: alreadyOut, model: model, upTo: tooLarge.prefixEnd, frame: frame, frameStart: frameStart
            )
            return 0
        }
        require(tracked == .withinLimit, "the tracker refused \(tracked) before the model did")
        require(refused == nil, "the reassembler refused \(refused!) before the model did")
        checkMessages(messages, from: alreadyOut, model: model, upTo: offset, frame: frame, frameStart: frameStart)
        let atBoundary = model.isBoundary(offset)
        require(tracker.isAtMessageBoundary == atBoundary, "tracker boundary at \(offset)")
        require(reassembler.isAtMessageBoundary == atBoundary, "reassembler boundary at \(offset)")
        require(tracker.completedMessages == messages.count, "tracker counted \(tracker.completedMessages)")
    }
    for message in messages where message.getInteger(at: message.readerIndex, as: UInt8.self) == 1 {
        let payload = message.getSlice(at: message.readerIndex + 5, length: message.readableBytes - 5)!
        checkInflate(payload, limit: inflateLimit)
    }
    return 0
}

/// The messages of the whole stream, read at once.
private struct StreamModel {
    /// Where each whole message starts and ends (prefix included), in stream order.
    var messages: [Range<Int>] = []
    /// The first message over the limit: where its prefix ends, and its declared length.
    var tooLarge: (prefixEnd: Int, length: Int)?
    private var boundaries: Set<Int> = [0]

    init(_ stream: [UInt8], limit: Int) {
        var start = 0
        while start + 5 <= stream.count {
            let length = Int(stream[start + 1]) << 24 | Int(stream[start + 2]) << 16 | Int(stream[start + 3]) << 8
                | Int(stream[start + 4])
            if length > limit {
                tooLarge = (start + 5, length)
                return
            }
            guard start + 5 + length <= stream.count else { return }
            messages.append(start..<(start + 5 + length))
            start += 5 + length
            boundaries.insert(start)
        }
    }

    func isBoundary(_ offset: Int) -> Bool { boundaries.contains(offset) }
}

/// The messages reassembled so far are exactly the model's messages that end by `upTo`; those new on this frame are
/// slices of it when they lie inside it.
private func checkMessages(
    _ messages: [ByteBuffer], from alreadyOut: Int, model: StreamModel, upTo: Int, frame: ByteBuffer, frameStart: Int
) {
    let expected = model.messages.prefix { $0.upperBound <= upTo }
    require(messages.count == expected.count, "\(messages.count) messages reassembled, \(expected.count) ended")
    for index in alreadyOut..<messages.count {
        let message = messages[index]
        let range = expected[index]
        require(message.readableBytes == range.count && message.readableBytes >= 5)
        let declared = Int(message.getInteger(at: message.readerIndex + 1, as: UInt32.self)!)
        require(declared == message.readableBytes - 5, "a message is not whole")
        require(range.upperBound > frameStart, "a message came out after the frame it ended in")
        let inFrame = frameStart..<(frameStart + frame.readableBytes)
        if range.lowerBound >= inFrame.lowerBound, range.upperBound <= inFrame.upperBound {
            require(message.storageIsShared(with: frame), "a message inside one frame was copied")
            let sliceStart = range.lowerBound - frameStart
            let inFrameBytes = frame.readableBytesView.dropFirst(sliceStart).prefix(range.count)
            require(message.readableBytesView.elementsEqual(inFrameBytes), "a message is not the stream's bytes")
        }
    }
}

/// The inflater under `limit` agrees with itself under a large limit.
private func checkInflate(_ payload: ByteBuffer, limit: Int) {
    let large = 1 << 20
    let reference = Result { () throws(GRPCMessageInflater.Failure) in
        try GRPCMessageInflater.inflate(payload, limit: large)
    }
    do throws(GRPCMessageInflater.Failure) {
        let inflated = try GRPCMessageInflater.inflate(payload, limit: limit)
        require(inflated.readableBytes <= limit, "inflated past the limit")
        guard case .success(let whole) = reference else {
            fatalError("inflated under \(limit) bytes but not under \(large): \(reference)")
        }
        require(inflated == whole, "a different result under a smaller limit")
    } catch {
        switch error {
        case .tooLarge(let reported):
            require(reported == limit)
            if case .success(let whole) = reference {
                require(whole.readableBytes > limit, "\(whole.readableBytes) bytes refused under a limit of \(limit)")
            }
        case .corrupt:
            if case .success(let whole) = reference {
                fatalError("corrupt under \(limit), \(whole.readableBytes) bytes under \(large)")
            }
        }
    }
}

/// `precondition` that says what failed in an optimized build too.
private func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "", file: StaticString = #file,
    line: UInt = #line
) {
    if !condition() { fatalError("fuzz check failed: \(message())", file: file, line: line) }
}
