// Certificates for the TLS tests: Tests/Fixtures/tls/generate.sh (the openssl command line), run once per test
// process into a temporary directory that the process removes at exit.

import Foundation
import NIOConcurrencyHelpers
import XCTest

@testable import Host

enum TLSTestCertificates {
    private static let generated = NIOLockedValueBox<Result<URL, TLSTestCertificatesError>?>(nil)

    /// The path of `name` (e.g. `server.pem`) among the generated files; skips the test when openssl cannot run.
    static func path(_ name: String) throws -> String {
        try directory().appendingPathComponent(name).path
    }

    /// A `tls:` block with `certificate`'s pem and key, the CA bundle `ca`, and the other keys as given.
    static func config(
        _ certificate: String?, ca: String? = nil, name: String = "", skip: Bool = false
    ) throws -> TLSConfig {
        TLSConfig(
            certificatePath: try certificate.map { try path("\($0).pem") } ?? "",
            keyPath: try certificate.map { try path("\($0).key") } ?? "",
            remoteCAPath: try ca.map { try path("\($0).pem") } ?? "",
            caServerName: name,
            skipCAVerification: skip
        )
    }

    private static func directory() throws -> URL {
        let result = generated.withLockedValue { cached in
            if let cached { return cached }
            let made = generate()
            cached = made
            return made
        }
        switch result {
        case .success(let directory): return directory
        case .failure(let error): throw XCTSkip(error.message)
        }
    }

    private static func generate() -> Result<URL, TLSTestCertificatesError> {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tls/generate.sh")
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("s2s-tls-tests-\(ProcessInfo.processInfo.processIdentifier)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path, directory.path]
        let errors = Pipe()
        process.standardError = errors
        do {
            try process.run()
            process.waitUntilExit()
        } catch {
            return .failure(TLSTestCertificatesError(message: "cannot run generate.sh: \(error)"))
        }
        guard process.terminationStatus == 0 else {
            let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            return .failure(TLSTestCertificatesError(
                message: "generate.sh exited \(process.terminationStatus): \(output)"
            ))
        }
        atexit { try? FileManager.default.removeItem(atPath: TLSTestCertificates.removalPath) }
        return .success(directory)
    }

    /// Where `atexit` removes the files; a C function pointer cannot capture.
    fileprivate static var removalPath: String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("s2s-tls-tests-\(ProcessInfo.processInfo.processIdentifier)").path
    }
}

struct TLSTestCertificatesError: Error {
    var message: String
}
