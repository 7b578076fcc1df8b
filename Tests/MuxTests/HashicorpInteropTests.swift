// Our yamux against hashicorp/yamux itself — the library the Go s2s-proxy multiplexes with — over real TCP:
// Tests/Mux/yamux-peer (Go, built here from Debian's golang-github-hashicorp-yamux-dev in GOPATH mode) as server
// and as client, many streams of 1 MiB each way at once, so both flow-control directions and FIN handling meet a
// real implementation.

import Foundation
import NIOCore
import NIOPosix
import XCTest

@testable import Mux

/// Echoes what a stream receives; the stream closes (sending our FIN after the echo) when the peer's FIN arrives.
final class EchoHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// Collects a stream's bytes until it closes.
final class CollectHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var collected = ByteBuffer()
    let done: EventLoopPromise<ByteBuffer>

    init(done: EventLoopPromise<ByteBuffer>) { self.done = done }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        collected.writeBuffer(&buffer)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(collected)
    }
}

final class HashicorpInteropTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    private var group: MultiThreadedEventLoopGroup!
    private var processes: [Process] = []

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDown() {
        for process in processes where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? group.syncShutdownGracefully()
    }

    /// Builds Tests/Mux/yamux-peer once per test run.
    private static let peerBinary: Result<String, Error> = Result {
        let go = ["/usr/bin/go", "/usr/lib/go/bin/go"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let library = "/usr/share/gocode/src/github.com/hashicorp/yamux"
        guard let go, FileManager.default.fileExists(atPath: library) else {
            throw PeerUnavailable(
                "the Go yamux peer needs golang-go and golang-github-hashicorp-yamux-dev (apt-get install them; "
                    + ".ci/run does)")
        }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("yamux-peer-\(getpid())").path
        let build = Process()
        build.executableURL = URL(fileURLWithPath: go)
        build.arguments = ["build", "-o", output, "main.go"]
        build.currentDirectoryURL = repository.appendingPathComponent("Tests/Mux/yamux-peer")
        var environment = ProcessInfo.processInfo.environment
        environment["GOPATH"] = "/usr/share/gocode"
        environment["GO111MODULE"] = "off"
        environment["GOCACHE"] = FileManager.default.temporaryDirectory.appendingPathComponent("yamux-peer-gocache").path
        build.environment = environment
        try build.run()
        build.waitUntilExit()
        guard build.terminationStatus == 0 else { throw PeerUnavailable("go build of yamux-peer failed") }
        return output
    }

    struct PeerUnavailable: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Starts the peer; returns it, and the line after "READY " once printed (or the whole output if it exits).
    private func startPeer(_ arguments: [String]) throws -> (Process, Pipe, String) {
        let binary: String
        switch Self.peerBinary {
        case .success(let path): binary = path
        case .failure(let error):
            if ProcessInfo.processInfo.environment["CI"] != nil { throw error }
            throw XCTSkip("\(error)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        processes.append(process)
        var line = ""
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line += String(decoding: byte, as: UTF8.self)
        }
        return (process, output, line.hasPrefix("READY ") ? String(line.dropFirst(6)) : line)
    }

    private func pattern(_ size: Int, _ seed: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed) })
        return buffer
    }

    private func sessionPipeline(_ channel: Channel, role: YamuxRole, session: YamuxSession) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(YamuxFrameDecoder(maximumPayload: session.configuration.receiveWindow)), session,
            ])
        }
    }

    func testStreamsWeOpenAreEchoedByAHashicorpServer() throws {
        let (_, _, address) = try startPeer(["-accept", "127.0.0.1:0"])
        let parts = address.split(separator: ":")
        let eventLoop = group.next()
        let session = YamuxSession(role: .client, eventLoop: eventLoop) { _ in eventLoop.makeSucceededVoidFuture() }
        _ = try ClientBootstrap(group: eventLoop)
            .channelInitializer { self.sessionPipeline($0, role: .client, session: session) }
            .connect(host: String(parts[0]), port: Int(parts[1])!).wait()

        XCTAssertGreaterThanOrEqual(try session.ping().wait(), .zero)
        let size = 1024 * 1024
        var echoes: [EventLoopFuture<ByteBuffer>] = []
        for index in 0..<8 {
            let done = eventLoop.makePromise(of: ByteBuffer.self)
            let stream = try session.openStream { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CollectHandler(done: done))
                }
            }.wait()
            stream.writeAndFlush(pattern(size, index), promise: nil)
            stream.close(mode: .output, promise: nil)  // FIN after the data: the echo ends with ours
            echoes.append(done.futureResult)
        }
        for (index, echo) in echoes.enumerated() {
            let received = try echo.wait()
            XCTAssertEqual(received.readableBytes, size, "stream \(index)")
            XCTAssertTrue(received == pattern(size, index), "stream \(index): the echo differs")
        }
        // Both sides closed every stream: the session forgets them.
        try eventLoop.submit {}.wait()
        XCTAssertEqual(try eventLoop.submit { session.streamCount }.wait(), 0)
    }

    func testStreamsAHashicorpClientOpensAreServedHere() throws {
        let sessionEnded = group.next().makePromise(of: Void.self)
        let server = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                let session = YamuxSession(role: .server, eventLoop: channel.eventLoop) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(EchoHandler())
                    }
                }
                channel.closeFuture.whenComplete { _ in sessionEnded.succeed() }
                return self.sessionPipeline(channel, role: .server, session: session)
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let port = server.localAddress!.port!
        let streams = ProcessInfo.processInfo.environment["YAMUX_STREAMS"] ?? "16"
        let size = ProcessInfo.processInfo.environment["YAMUX_SIZE"] ?? "\(1024 * 1024)"
        let (peer, output, line) = try startPeer(["-dial", "127.0.0.1:\(port)", "-open", streams, "-size", size])
        XCTAssertEqual(line, "127.0.0.1:\(port)")
        peer.waitUntilExit()
        let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(peer.terminationStatus, 0, rest)
        XCTAssertTrue(rest.contains("opened 16 streams OK"), rest)
        // The peer exiting closes its connection: the session here ends with it.
        XCTAssertNoThrow(try sessionEnded.futureResult.wait())
    }
}
