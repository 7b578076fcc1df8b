// Private copies of plugin files, the files the host actually maps.
//
// Loading a plugin straight from its file has two faults: the dynamic loader hands back the already-loaded object
// for a path it has seen (or for the same file), so a plugin rebuilt at the same path would never be loaded by a
// reload; and a compiler or `cp` that rewrites the file in place changes pages the running proxy executes, which
// can crash it. So each build is copied, as its bytes are hashed, into a directory of this process's own, and
// loaded from there: the original file may then be rebuilt at will, and a reload loads the new build beside the old.
//
// The directory is `$TMPDIR/s2s-proxy-plugins.<pid>.<random>` (TMPDIR defaults to /tmp). The copies stay while the
// process runs (debuggers, profilers and crash backtraces read symbols from them) and are removed at exit; a
// directory left by a process that no longer exists (killed) is removed by the next one that makes its own.

import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum PluginFileCopies {
    /// A copy made, and the SHA-256 of the bytes copied.
    struct Copy {
        let path: String
        let sha256: String
    }

    private static let prefix = "s2s-proxy-plugins."

    /// The directory once made, or why it could not be.
    private static let directory = NIOLockedValueBox<Result<String, CopyFailure>?>(nil)
    private static let counter = NIOLockedValueBox(0)

    /// Why a copy could not be made.
    struct CopyFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Copies `source` into the private directory as `<n>-<file name>`.
    static func copy(_ source: String) -> Result<Copy, CopyFailure> {
        let made: Result<String, CopyFailure> = directory.withLockedValue { state in
            if let state { return state }
            let result = makeDirectory()
            state = result
            return result
        }
        let directory: String
        switch made {
        case .success(let path): directory = path
        case .failure(let failure): return .failure(failure)
        }
        let number = counter.withLockedValue { value -> Int in
            value += 1
            return value
        }
        let name = source.split(separator: "/").last.map(String.init) ?? "plugin.so"
        let destination = "\(directory)/\(number)-\(name)"
        do {
            return .success(Copy(path: destination, sha256: try copyFile(from: source, to: destination)))
        } catch {
            unlink(destination)
            return .failure(error)
        }
    }

    /// Removes a copy that was not needed (its build was loaded already) or did not load.
    static func discard(_ copy: Copy) {
        unlink(copy.path)
    }

    /// Removes the directory and its copies; at exit, when nothing will run plugin code again.
    static func removeAll() {
        guard case .success(let path)? = directory.withLockedValue({ $0 }) else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    private static func makeDirectory() -> Result<String, CopyFailure> {
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        removeStale(in: base)
        var template = Array("\(base)/\(prefix)\(getpid()).XXXXXX".utf8CString)
        let path: String? = template.withUnsafeMutableBufferPointer { buffer in
            guard let start = buffer.baseAddress, let made = mkdtemp(start) else { return nil }
            return String(cString: made)
        }
        guard let path else {
            return .failure(CopyFailure(
                description: "cannot make a directory in \(base) (\(String(cString: strerror(errno))));"
                    + " point TMPDIR at a writable directory"
            ))
        }
        atexit { PluginFileCopies.removeAll() }
        return .success(path)
    }

    /// Removes the directories of processes that no longer exist.
    private static func removeStale(in base: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names where name.hasPrefix(prefix) {
            let parts = name.dropFirst(prefix.count).split(separator: ".")
            guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: "\(base)/\(name)")
            }
        }
    }

    /// Copies `source` to the new file `destination` (mode 0700), returning the SHA-256 of the bytes copied.
    private static func copyFile(from source: String, to destination: String) throws(CopyFailure) -> String {
        func failure(_ what: String) -> CopyFailure {
            CopyFailure(description: "\(what): \(String(cString: strerror(errno)))")
        }
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw failure("cannot read \(source)") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o700)
        guard output >= 0 else { throw failure("cannot write \(destination)") }
        defer { close(output) }
        var writeFailed = false
        let digest = SHA256.hex(readingToEndOf: input) { piece in
            var written = 0
            while written < piece.count {
                let result = write(output, piece.baseAddress! + written, piece.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    writeFailed = true
                    return false
                }
                written += result
            }
            return true
        }
        guard let digest else { throw failure(writeFailed ? "cannot write \(destination)" : "cannot read \(source)") }
        return digest
    }
}
