// libFuzzer target: the whole HTTP/2 engine (`H2ConnectionHandler`: decoder, state machine, HPACK decoding, header
// rules, header encoding, DATA queued for window) on an EmbeddedChannel, in both roles, fed arbitrary bytes in reads
// of sizes the input chooses, with an owner that behaves like the proxy's: a server answers every request it is
// handed with headers, echoes its DATA and ends it with trailers; a client opens streams and sends DATA; both
// release what they receive and reset some streams. Nothing may crash, what the engine writes must decode with its
// own decoder (and HPACK), and no more streams may open than the limits allow. Built and run by scripts/fuzz.

import NIOCore
import NIOEmbedded
import NIOHPACK

@testable import HTTP2Forwarding

/// An owner that answers, echoes and resets, as the proxy's connection handlers would.
private final class FuzzOwner: H2ConnectionDelegate {
    unowned let engine: H2ConnectionHandler
    let role: H2FrameDecoder.Role
    var answered: Set<H2StreamID> = []
    var handed = 0

    init(engine: H2ConnectionHandler, role: H2FrameDecoder.Role) {
        self.engine = engine
        self.role = role
    }

    func h2Headers(_ headers: HPACKHeaders, stream: H2StreamID, endStream: Bool, isNewStream: Bool) {
        handed += 1
        guard role == .server else { return }
        if isNewStream, !answered.contains(stream) {
            answered.insert(stream)
            engine.sendHeaders([":status": "200", "content-type": "application/grpc"], stream: stream, endStream: false, promise: nil)
        }
        if endStream { trailers(stream) }
        if stream % 5 == 0 { engine.resetStream(stream, code: .cancel) }
    }

    func h2Data(_ payload: ByteBuffer, stream: H2StreamID, endStream: Bool, flowControlledLength: Int) {
        handed += 1
        engine.release(stream: stream, bytes: flowControlledLength)
        if role == .server, answered.contains(stream) {
            engine.sendData(payload, stream: stream, endStream: false, promise: nil)
            if endStream { trailers(stream) }
        }
        if stream % 7 == 0 { engine.resetStream(stream, code: .cancel) }
    }

    private func trailers(_ stream: H2StreamID) {
        answered.remove(stream)
        engine.sendHeaders(["grpc-status": "0"], stream: stream, endStream: true, promise: nil)
    }

    func h2StreamReset(_ stream: H2StreamID, code: H2ErrorCode, byPeer: Bool) { answered.remove(stream) }
    func h2StreamClosed(_ stream: H2StreamID) { answered.remove(stream) }
    func h2GoAway(lastStream: H2StreamID, code: H2ErrorCode, debugData: ByteBuffer) {}
    func h2PeerSettingsChanged() {}
    func h2PingAnswered(opaque: UInt64) {}
    func h2ConnectionError(_ violation: H2ProtocolViolation) {}
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzH2Engine(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let control = bytes.first else { return 0 }
    let role: H2FrameDecoder.Role = control & 1 == 0 ? .server : .client
    let readSize = control & 0x80 != 0 ? count : Int(control >> 1 & 0x3F) + 1
    var configuration = H2ConnectionHandler.Configuration(role: role)
    configuration.connection.maxConcurrentStreams = 8
    configuration.connection.initialWindowSize = 4096
    configuration.connection.connectionWindowSize = 65_535
    configuration.connection.maxHeaderListSize = 4096
    configuration.connection.maxControlFramesPerWindow = 64
    configuration.connection.recentlyResetMemory = 4
    let engine = H2ConnectionHandler(configuration: configuration)
    let owner = FuzzOwner(engine: engine, role: role)
    engine.delegate = owner
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
    do {
        try channel.pipeline.syncOperations.addHandler(engine)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    } catch {
        preconditionFailure("the engine could not be set up: \(error)")
    }
    // What the engine writes is read back as the peer would read it: it must always decode.
    var reader = H2FrameDecoder(role: role == .server ? .client : .server, maxHeaderBlockBytes: 1 << 20)
    // The input's SETTINGS may allow the engine frames up to the protocol's largest.
    reader.maxFrameSize = 16_777_215
    var hpack = HPACKDecoder(allocator: ByteBufferAllocator())
    func drain() {
        // (A client engine's preface is read by the server-role reader itself.)
        while let written = try? channel.readOutbound(as: ByteBuffer.self) {
            reader.append(written)
            do {
                while let output = try reader.nextFrame() {
                    if case .frame(.headers(_, let block, _)) = output {
                        var block = block
                        _ = try hpack.decodeHeaders(from: &block)
                    }
                }
            } catch {
                preconditionFailure("the engine wrote what does not decode: \(error)")
            }
        }
    }
    if role == .client {
        // Two calls under way before the server says anything.
        for _ in 0..<2 {
            let request: HPACKHeaders = [":method": "POST", ":scheme": "http", ":path": "/svc/Method", "content-type": "application/grpc"]
            if let stream = engine.openStream(headers: request, endStream: false) {
                engine.sendData(ByteBuffer(repeating: 1, count: 5000), stream: stream, endStream: true, promise: nil)
            }
        }
        engine.flush()
    }
    drain()
    var offset = 1
    while offset < count, channel.isActive {
        let end = min(count, offset + readSize)
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes[offset..<end]))
        } catch {
            break
        }
        channel.pipeline.fireChannelReadComplete()
        offset = end
        drain()
        precondition(engine.openStreamCount <= 8 + 2, "more streams than the limits allow")
    }
    return 0
}
