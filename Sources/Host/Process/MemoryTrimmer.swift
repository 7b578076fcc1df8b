// Gives memory the process freed back to the system once the load that needed it has gone.
//
// glibc's malloc keeps freed memory in its arenas (one per thread that allocates, so one per event loop at least)
// and returns it to the system only from the top of a heap. After a wave of connections or yamux streams the proxy
// freed nearly all of it, yet stayed at the wave's peak: 255 MiB after three waves of 2000 connections, 38 MiB after
// a `malloc_trim(0)`. A container limit or an operator reading RSS sees a leak that is not one.
//
// Every `interval` this looks at the resident size; when it is well above what the last trim left and has stopped
// growing (the load is over, or at least steady), it trims on the thread pool, so no event loop waits for it.
//
// Because it does, the allocator is told at start (`tuneAllocator`) to keep large blocks instead of returning each
// at once: glibc gives a block over 128 KiB its own mmap and unmaps it on free, and trims the heap's top past 128
// KiB, so a stream of 1 MiB replication batches (a routing-mode batch is gathered, read and written out) paid a
// mapping and a page fault per 4 KiB for every batch: about a tenth of the proxy's CPU. Blocks up to 32 MiB now come
// from the heap and stay for the next one, and the heap's top is trimmed past 64 MiB, or by the trimmer when the
// load is gone.

import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

final class MemoryTrimmer: Sendable {
    private let interval: TimeAmount
    /// Growth over the size the last trim left that is worth a trim.
    private let threshold: Int
    private let logger: Logger
    private let threadPool: NIOThreadPool
    private let state = NIOLockedValueBox(State())

    private struct State {
        var task: RepeatedTask?
        /// Resident bytes right after the last trim (or at start).
        var baseline = 0
        /// Resident bytes at the previous look.
        var previous = 0
        var trimming = false
    }

    init(threadPool: NIOThreadPool, logger: Logger, interval: TimeAmount = .seconds(5), threshold: Int = 16 << 20) {
        self.threadPool = threadPool
        self.logger = logger
        self.interval = interval
        self.threshold = threshold
    }

    /// Starts looking every `interval` on `eventLoop`.
    func start(on eventLoop: EventLoop) {
        guard Self.mallocTrim != nil else { return }
        let resident = Self.residentBytes() ?? 0
        let task = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            self.look()
        }
        state.withLockedValue {
            $0.baseline = resident
            $0.previous = resident
            $0.task = task
        }
    }

    func stop() {
        state.withLockedValue {
            $0.task?.cancel()
            $0.task = nil
        }
    }

    private func look() {
        guard let resident = Self.residentBytes() else { return }
        let due = state.withLockedValue { state -> Bool in
            defer { state.previous = resident }
            guard !state.trimming, resident >= state.baseline + threshold, resident <= state.previous else { return false }
            state.trimming = true
            return true
        }
        guard due else { return }
        threadPool.submit { _ in
            _ = Self.mallocTrim?(0)
            let after = Self.residentBytes() ?? resident
            self.state.withLockedValue {
                $0.baseline = after
                $0.previous = after
                $0.trimming = false
            }
            self.logger.debug(
                "returned freed memory to the system",
                metadata: ["before_mib": "\(resident >> 20)", "after_mib": "\(after >> 20)"]
            )
        }
    }

    /// Large blocks from the heap, kept for reuse (see the header); a no-op without glibc.
    static func tuneAllocator() {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (CInt, CInt) -> CInt).self)
        let trimThreshold: CInt = -1  // M_TRIM_THRESHOLD
        let mmapThreshold: CInt = -3  // M_MMAP_THRESHOLD
        _ = mallopt(mmapThreshold, 32 << 20)
        _ = mallopt(trimThreshold, 64 << 20)
        #endif
    }

    /// glibc's `malloc_trim`, looked up at run time: Swift's Glibc module does not declare it, and other C
    /// libraries (musl) have none.
    private static let mallocTrim: (@convention(c) (Int) -> CInt)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> CInt).self)
        #else
        return nil
        #endif
    }()

    /// The resident set size of this process, from /proc/self/statm (its second field, in pages).
    static func residentBytes() -> Int? {
        #if os(Linux)
        let descriptor = open("/proc/self/statm", O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: 128)
        let count = read(descriptor, &bytes, bytes.count)
        guard count > 0 else { return nil }
        let fields = bytes[0..<count].split(separator: UInt8(ascii: " "))
        guard fields.count >= 2, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        return nil
        #endif
    }
}
