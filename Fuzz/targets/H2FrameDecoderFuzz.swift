// libFuzzer target: the HTTP/2 frame decoder and the connection state machine (HTTP2Forwarding) on arbitrary bytes,
// in both roles, cut into reads of sizes the input chooses, every decoded frame applied to the state machine, which
// also releases stream credit and resets streams as an owner would. Nothing may crash, the decoder may never hold
// more than one frame and one header block, and every frame and action must respect the limits given. Built and run
// by scripts/fuzz.

import NIOCore

@testable import HTTP2Forwarding

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzH2FrameDecoder(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let control = bytes.first else { return 0 }
    let role: H2FrameDecoder.Role = control & 1 == 0 ? .server : .client
    // Reads of 1 to 64 bytes, or the whole input at once.
    let readSize = control & 0x80 != 0 ? count : Int(control >> 1 & 0x3F) + 1
    var decoder = H2FrameDecoder(role: role, maxHeaderBlockBytes: 4096, maxContinuationFrames: 8)
    var configuration = H2ConnectionStateMachine.Configuration(role: role)
    configuration.maxConcurrentStreams = 8
    configuration.initialWindowSize = 4096
    configuration.connectionWindowSize = 65_535
    configuration.maxControlFramesPerWindow = 64
    configuration.recentlyResetMemory = 4
    var connection = H2ConnectionStateMachine(configuration: configuration)
    var actions: [H2ConnectionAction] = []
    connection.start(into: &actions)
    var offset = 1
    while offset < count {
        let end = min(count, offset + readSize)
        decoder.append(ByteBuffer(bytes: bytes[offset..<end]))
        offset = end
        do {
            while let output = try decoder.nextFrame() {
                check(output)
                actions.removeAll(keepingCapacity: true)
                connection.receive(output, into: &actions)
                var owner: [H2ConnectionAction] = []
                for action in actions {
                    switch action {
                    case .close:
                        return 0
                    case .data(let stream, let payload, _, _):
                        // An owner that forwards everything, and resets every seventh stream.
                        connection.release(stream: stream, bytes: payload.readableBytes, into: &owner)
                        if stream % 7 == 0 { connection.resetStream(stream, code: .cancel, into: &owner) }
                    case .send(.windowUpdate(_, let increment)):
                        precondition(increment > 0 && increment <= 0x7FFF_FFFF)
                    default:
                        break
                    }
                }
                precondition(connection.openStreamCount <= 8 + 1, "more streams than the limit")
            }
        } catch {
            precondition(error.stream == nil, "a thrown violation is a connection error")
            return 0
        }
        precondition(decoder.bufferedBytes <= 24 + 9 + 16_384 + readSize, "the decoder holds more than a frame")
    }
    return 0
}

private func check(_ output: H2FrameDecoder.Output) {
    switch output {
    case .frame(.data(let stream, let payload, _, let flowControlled)):
        precondition(stream != 0 && payload.readableBytes <= flowControlled && flowControlled <= 16_384)
    case .frame(.headers(let stream, let block, _)):
        precondition(stream != 0 && block.readableBytes <= 4096)
    case .frame(.windowUpdate(_, let increment)):
        precondition(increment > 0 && increment <= 0x7FFF_FFFF)
    case .streamError(let violation, let block):
        precondition(violation.stream != nil && violation.stream != 0)
        precondition((block?.readableBytes ?? 0) <= 4096)
    default:
        break
    }
}
