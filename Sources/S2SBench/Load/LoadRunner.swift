// LoadRunner: carries out a LoadPlan. It opens the HTTP/2 connections (each with its workload handler on its own
// event loop), steps them through start, warm-up, the measured window and drain, and merges what they recorded into
// a LoadResult. Call logic lives in the workloads; the runner only sequences phases and owns the threads.

import NIOCore
import NIOHTTP2
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Why a load run could not be carried out.
struct LoadRunError: Error, CustomStringConvertible {
    let description: String
}

/// Runs one load plan against its target.
struct LoadRunner {
    /// How long a connection may take to finish its outstanding calls after the measured window before it is
    /// closed (and those calls counted as errors).
    private static let drainTimeout = TimeAmount.seconds(5)

    let plan: LoadPlan

    /// A connected load connection, the handler that drives it and the counter of resets it receives.
    private struct LoadConnection: Sendable {
        let channel: Channel
        let control: NIOLoopBound<any LoadConnectionControl>
        let resets: NIOLoopBound<InboundResetCounter>
    }

    /// How one connection's run ended, read once it is closed.
    private struct ConnectionOutcome: Sendable {
        var errors: UInt64
        var resetsReceived: Int
        var connectionLoss: String?
    }

    /// Runs the plan and returns its result; throws only when the target cannot be reached at all.
    func run() async throws -> LoadResult {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.plan.threads)
        do {
            let result = try await self.run(on: group)
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func run(on group: MultiThreadedEventLoopGroup) async throws -> LoadResult {
        var connections: [LoadConnection] = []
        do {
            for index in 0..<self.plan.connections {
                connections.append(try await self.connect(index, group: group))
            }
        } catch {
            for connection in connections {
                connection.channel.close(promise: nil)
            }
            throw LoadRunError(description: "cannot connect to \(self.plan.target): \(error)")
        }

        for connection in connections {
            connection.control.eventLoop.execute { connection.control.value.start() }
        }
        try await Task.sleep(nanoseconds: Self.nanoseconds(self.plan.warmupSeconds))

        let cpuAtStart = Self.processCPUSeconds()
        _ = try await Self.onEach(connections) { $0.beginRecording() }
        try await Task.sleep(nanoseconds: Self.nanoseconds(self.plan.durationSeconds))
        let tallies = try await Self.onEach(connections) { $0.endRecording() }
        let cpuSeconds = Self.processCPUSeconds() - cpuAtStart

        await Self.drainAndClose(connections)
        var outcomes: [ConnectionOutcome] = []
        for connection in connections {
            outcomes.append(
                try await connection.channel.eventLoop.submit {
                    ConnectionOutcome(
                        errors: connection.control.value.errors,
                        resetsReceived: connection.resets.value.resetsReceived,
                        connectionLoss: connection.control.value.connectionLoss
                    )
                }.get()
            )
        }

        var total = LoadTally()
        for tally in tallies {
            total.merge(tally)
        }
        var result = LoadResult(
            plan: self.plan,
            tally: total,
            errors: outcomes.reduce(0) { $0 + $1.errors },
            cpuSeconds: cpuSeconds
        )
        result.resetsReceived = outcomes.reduce(0) { $0 + $1.resetsReceived }
        let losses = outcomes.compactMap(\.connectionLoss)
        result.connectionsLost = losses.count
        result.connectionLossReasons = Array(Set(losses)).sorted()
        return result
    }

    private func connect(_ index: Int, group: EventLoopGroup) async throws -> LoadConnection {
        let plan = self.plan
        return try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .connect(host: plan.host, port: plan.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // The load generator stands in for Temporal's Go clients, which do not limit inbound resets;
                    // it counts them instead.
                    let resetCounter = InboundResetCounter(side: .client)
                    let codec = BenchHTTP2Tuning.codec(mode: .client, toleratingResets: true)
                    let driver = Self.makeDriver(plan: plan, connectionIndex: index, channel: channel)
                    try channel.pipeline.syncOperations.addHandlers([resetCounter, codec, driver])
                    return LoadConnection(
                        channel: channel,
                        control: NIOLoopBound(driver, eventLoop: channel.eventLoop),
                        resets: NIOLoopBound(resetCounter, eventLoop: channel.eventLoop)
                    )
                }
            }
    }

    /// The handler that runs the plan's workload on connection number `connectionIndex`.
    private static func makeDriver(
        plan: LoadPlan,
        connectionIndex: Int,
        channel: Channel
    ) -> any LoadConnectionControl & ChannelHandler {
        let message = GRPCMessageCounter.makeMessage(body: plan.requestBody, allocator: channel.allocator)
        let headers = BenchGRPCHeaders.request(path: plan.path, authority: plan.target, metadata: plan.metadata)
        let share = plan.concurrency(ofConnection: connectionIndex)
        switch plan.mode {
        case .unary:
            let workload = UnaryWorkload(callsInFlight: share, requestHeaders: headers, requestMessage: message)
            return LoadConnectionHandler(workload: workload, eventLoop: channel.eventLoop)
        case .stream:
            let workload = StreamWorkload(
                streamCount: share,
                messagesInFlightPerStream: plan.messagesInFlightPerStream,
                requestHeaders: headers,
                message: message
            )
            return LoadConnectionHandler(workload: workload, eventLoop: channel.eventLoop)
        }
    }

    /// Runs `body` on every connection's event loop at about the same time and collects the answers in order.
    private static func onEach<Answer: Sendable>(
        _ connections: [LoadConnection],
        _ body: @escaping @Sendable (any LoadConnectionControl) -> Answer
    ) async throws -> [Answer] {
        let futures = connections.map { connection in
            connection.control.eventLoop.submit { body(connection.control.value) }
        }
        var answers: [Answer] = []
        for future in futures {
            answers.append(try await future.get())
        }
        return answers
    }

    /// Lets every connection finish its outstanding calls (up to `drainTimeout`), then closes it.
    private static func drainAndClose(_ connections: [LoadConnection]) async {
        for connection in connections {
            let channel = connection.channel
            let deadline = channel.eventLoop.scheduleTask(in: Self.drainTimeout) { connection.control.value.abandon() }
            connection.control.eventLoop.flatSubmit { connection.control.value.drain() }.whenComplete { _ in
                deadline.cancel()
                channel.close(promise: nil)
            }
        }
        for connection in connections {
            try? await connection.channel.closeFuture.get()
        }
    }

    private static func nanoseconds(_ seconds: Double) -> UInt64 {
        UInt64(max(seconds, 0) * 1e9)
    }

    /// CPU time (user plus system) this process has used so far, in seconds.
    private static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }
}
