// What to ask a reflection server next, given what it answered so far: the protocol logic of a schema pull.
//
// Owns `ReflectionPull`, a state machine over the messages of one `ServerReflectionInfo` stream: list the services,
// ask for the file declaring each (skipping reflection and health, which are not Temporal's), then ask by file name
// for every import not yet received, until the set is closed over imports. Answers arrive in request order on the
// stream, so outstanding requests are a queue. It does no I/O: `ReflectionStreamHandler` moves the bytes.

struct ReflectionPull {
    /// What the stream should do after a message.
    enum Action: Equatable {
        /// Send these requests (possibly none, while answers are outstanding).
        case send([ReflectionRequest])
        /// The schema is complete; close the stream.
        case finished(TemporalSchema)
        /// The pull cannot succeed; close the stream.
        case failed(TemporalSchemaError)
    }

    /// Service name prefixes of gRPC's own services, which every server may register and no plugin needs.
    static let skippedServicePrefixes = ["grpc.reflection.", "grpc.health."]

    /// The address the answers come from, for messages and the schema's source.
    let address: String
    private var outstanding: [ReflectionRequest] = []
    private var requestedFiles: Set<String> = []
    private var listedServices: [String] = []
    private var assembler = DescriptorSetAssembler()
    private var hasListing = false

    init(address: String) {
        self.address = address
    }

    /// The first request of the stream.
    mutating func start() -> [ReflectionRequest] {
        outstanding = [.listServices]
        return outstanding
    }

    /// Where the pull stands, for a timeout message.
    var progress: String {
        guard hasListing else { return "no list of services received yet" }
        let files = "\(assembler.fileCount) file\(assembler.fileCount == 1 ? "" : "s") received"
        return "\(listedServices.count) services listed, \(files), \(outstanding.count) requests unanswered"
    }

    /// Handles one response message of the stream.
    mutating func receive(message: [UInt8]) -> Action {
        let response: ReflectionResponse
        do {
            response = try ReflectionResponse(decoding: message)
        } catch {
            return .failed(.protocolViolation(address: address, detail: "\(error)"))
        }
        guard !outstanding.isEmpty else {
            return .failed(.protocolViolation(address: address, detail: "the server sent a response nobody asked for"))
        }
        let request = outstanding.removeFirst()
        switch (request, response) {
        case (_, .error(let code, let message)):
            let status = GRPCStatusCode(rawValue: code).map { "\($0)" } ?? "status \(code)"
            return .failed(.requestFailed(address: address, request: "\(request)", status: status, message: message))
        case (.listServices, .services(let names)):
            return receivedListing(names)
        case (.fileContainingSymbol, .files(let files)), (.fileByFilename, .files(let files)):
            for file in files {
                do {
                    try assembler.add(serialized: file, source: "the reflection answer to \(request) from \(address)")
                } catch {
                    return .failed(error)
                }
            }
            return outstanding.isEmpty ? requestMissingImports() : .send([])
        case (_, .unexpected(let what)):
            return .failed(.protocolViolation(address: address, detail: "the answer to \(request) was \(what)"))
        case (_, .services), (_, .files):
            return .failed(.protocolViolation(
                address: address, detail: "the answer to \(request) does not match the request"
            ))
        }
    }

    private mutating func receivedListing(_ names: [String]) -> Action {
        hasListing = true
        listedServices = names.filter { name in
            !Self.skippedServicePrefixes.contains { name.hasPrefix($0) }
        }
        guard !listedServices.isEmpty else {
            let listed = names.isEmpty ? "no services" : "only \(names.joined(separator: ", "))"
            return .failed(.protocolViolation(
                address: address, detail: "reflection lists \(listed); this is not a Temporal frontend"
            ))
        }
        outstanding = listedServices.map { .fileContainingSymbol($0) }
        return .send(outstanding)
    }

    /// Asks for the imports still missing, or finishes when there are none.
    private mutating func requestMissingImports() -> Action {
        var requests: [ReflectionRequest] = []
        for missing in assembler.missingImports {
            guard requestedFiles.insert(missing.dependency).inserted else {
                return .failed(.protocolViolation(
                    address: address,
                    detail: "the answer to file_by_filename \"\(missing.dependency)\" (imported by \(missing.file)) "
                        + "lacks that file"
                ))
            }
            requests.append(.fileByFilename(missing.dependency))
        }
        if !requests.isEmpty {
            outstanding = requests
            return .send(requests)
        }
        return finish()
    }

    private func finish() -> Action {
        let source = "reflection from \(address)"
        let schema: TemporalSchema
        do {
            let bytes = try assembler.serializedDescriptorSet(source: source)
            schema = try TemporalSchema(descriptorSetBytes: bytes, source: source)
        } catch {
            return .failed(error)
        }
        let declared = Set(schema.serviceNames)
        if let undeclared = listedServices.first(where: { !declared.contains($0) }) {
            return .failed(.protocolViolation(
                address: address, detail: "service \(undeclared) is listed, but no file the server sent declares it"
            ))
        }
        return .finished(schema)
    }
}
