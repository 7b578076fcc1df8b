// `s2s-proxy schema pull` and `s2s-proxy schema show`: the Temporal schema that schema-driven plugins work from.
//
// `pull` saves a server's schema (gRPC reflection) as a binary FileDescriptorSet for `schema.file`, where the
// proxy cannot reach reflection itself; `show` lists the services and methods of a saved file or a live server, so
// plugin authors can see the method paths and message types they write rules against.

import ArgumentParser
import Host
import NIOCore
import NIOPosix

struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Save or list the Temporal schema (the services' protobuf descriptors, from gRPC reflection).",
        subcommands: [SchemaPullCommand.self, SchemaShowCommand.self]
    )
}

struct SchemaPullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull a server's schema by gRPC reflection and save it as a binary FileDescriptorSet.",
        discussion: "The file can be named as schema.file of a cluster connection, for a proxy that cannot reach "
            + "gRPC reflection of its local Temporal. Exits 1 with the reason when the pull fails."
    )

    @Option(name: .long, help: "The Temporal frontend to ask, as host:port (plain TCP).")
    var address: String

    @Option(name: .long, help: "Where to write the FileDescriptorSet (replaced if it exists).")
    var out: String

    @Option(name: .customLong("timeout-seconds"), help: "How long the whole pull may take.")
    var timeoutSeconds: Double = 30

    func validate() throws {
        try SchemaArguments.validate(address: address, timeoutSeconds: timeoutSeconds)
    }

    func run() async throws {
        let schema = try await SchemaArguments.pull(
            from: address, timeoutSeconds: timeoutSeconds, command: "schema pull"
        )
        do {
            try schema.write(to: out)
        } catch {
            printToStandardError("s2s-proxy schema pull: \(error)")
            throw ExitCode(1)
        }
        print("saved \(out): \(schema.services.count) services, \(schema.fileCount) files, "
            + "\(schema.descriptorSetBytes.count) bytes (\(schema.source))")
        for name in schema.serviceNames {
            print("  \(name)")
        }
    }
}

struct SchemaShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "List the services and methods of a saved schema file or of a server's reflection.",
        discussion: "Give exactly one of --file and --address. Streaming sides are marked `stream`, as in .proto files."
    )

    @Option(name: .long, help: "A binary FileDescriptorSet (from `schema pull`, `buf build -o` or protoc).")
    var file: String?

    @Option(name: .long, help: "A Temporal frontend to ask by gRPC reflection, as host:port (plain TCP).")
    var address: String?

    @Option(name: .customLong("timeout-seconds"), help: "How long a pull from --address may take.")
    var timeoutSeconds: Double = 30

    func validate() throws {
        switch (file, address) {
        case (nil, nil), (.some, .some):
            throw ValidationError("give exactly one of --file FILE and --address HOST:PORT")
        case (nil, let address?):
            try SchemaArguments.validate(address: address, timeoutSeconds: timeoutSeconds)
        case (.some, nil):
            break
        }
    }

    func run() async throws {
        let schema: TemporalSchema
        if let file {
            do {
                schema = try TemporalSchema.load(file: file)
            } catch {
                printToStandardError("s2s-proxy schema show: \(error)")
                throw ExitCode(1)
            }
        } else {
            schema = try await SchemaArguments.pull(
                from: address!, timeoutSeconds: timeoutSeconds, command: "schema show"
            )
        }
        print("\(schema.source): \(schema.services.count) services, \(schema.fileCount) files, "
            + "\(schema.descriptorSetBytes.count) bytes")
        for service in schema.services {
            print("")
            print("service \(service.name)  // \(service.file)")
            for method in service.methods {
                let input = (method.clientStreaming ? "stream " : "") + method.inputType
                let output = (method.serverStreaming ? "stream " : "") + method.outputType
                print("  rpc \(method.name)(\(input)) returns (\(output))")
            }
        }
    }
}

/// What both schema commands share: checking `--address` and `--timeout-seconds`, and pulling.
enum SchemaArguments {
    static func validate(address: String, timeoutSeconds: Double) throws {
        guard HostAndPort(parsing: address) != nil else {
            throw ValidationError("--address \"\(address)\" is not host:port, e.g. 127.0.0.1:7233")
        }
        guard timeoutSeconds > 0, timeoutSeconds.isFinite else {
            throw ValidationError("--timeout-seconds must be a number of seconds greater than 0")
        }
    }

    /// Pulls by reflection; a failure is printed with its reason and exits 1.
    static func pull(from address: String, timeoutSeconds: Double, command: String) async throws -> TemporalSchema {
        let target = HostAndPort(parsing: address)!
        let timeout = TimeAmount.nanoseconds(Int64(timeoutSeconds * 1e9))
        let client = ReflectionSchemaClient(connectTimeout: min(.seconds(5), timeout), timeout: timeout)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pulled: TemporalSchema
        do {
            pulled = try await client.pull(from: target, on: group.next()).get()
        } catch {
            try? await group.shutdownGracefully()
            printToStandardError("s2s-proxy \(command): \(error)")
            throw ExitCode(1)
        }
        try? await group.shutdownGracefully()
        return pulled
    }
}
