// Times one scenario: warm up, size batches to about 20 ms, run batches for the requested time, and report the
// median batch's time per message, so a scheduling hiccup on a shared machine moves one batch, not the figure.

/// Accumulates results so the optimizer cannot drop the work being timed.
nonisolated(unsafe) var benchSink = 0

struct BenchTimer {
    let seconds: Double
    /// When set, every figure is exactly this many calls in one batch: for counting instructions with
    /// `valgrind --tool=callgrind`, which is repeatable where times on a shared machine are not.
    let fixedCalls: Int?

    /// Nanoseconds per call of `body`, the median over batches.
    func nanosecondsPerCall(_ body: () throws -> Int) rethrows -> Double {
        let clock = ContinuousClock()
        if let fixedCalls {
            let elapsed = try clock.measure {
                for _ in 0..<fixedCalls {
                    benchSink &+= try body()
                }
            }
            return Self.nanoseconds(elapsed) / Double(max(1, fixedCalls))
        }
        var calls = 1
        // Warm up and size a batch to about 20 ms.
        while true {
            let elapsed = try clock.measure {
                for _ in 0..<calls {
                    benchSink &+= try body()
                }
            }
            if elapsed >= .milliseconds(20) || calls >= 1 << 30 {
                break
            }
            calls *= 2
        }
        var samples: [Double] = []
        let deadline = clock.now.advanced(by: .milliseconds(Int64(seconds * 1000)))
        repeat {
            let elapsed = try clock.measure {
                for _ in 0..<calls {
                    benchSink &+= try body()
                }
            }
            samples.append(Self.nanoseconds(elapsed) / Double(calls))
        } while clock.now < deadline || samples.count < 3
        samples.sort()
        return samples[samples.count / 2]
    }

    private static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}
