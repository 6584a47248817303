import Glibc

/// The `tandem` command: picks the subcommand and turns its outcome into an exit status
/// (0 success, 1 failure, 64 usage error).
public enum TandemCommand {
    private static let usage = """
    Usage: tandem <command> [options]

    Tandem puts a proxy beside every application container in Kubernetes and keeps the two in step.

    Commands:
      inject      Add the proxy sidecar to workloads in manifests (files, folders, stdin).
      uninject    Remove exactly what inject added.
      webhook     Serve the mutating admission webhook that injects pods as they are created.
      proxy       Run the sidecar proxy (HTTP/1.1 and TCP, admin on loopback).
      supervise   Run an app container's command after its proxy is ready; stop the proxy after it exits.
      await       Wait for the proxy to be ready (the proxy container's postStart hook).
      install     Copy this binary into a folder (the tandem-init container).
      bridge      Serve discovery to legacy hosts, Envoy and tandem proxies.
      version     Print the version, source revision and library versions (also --version).
      help        Show this help, or a command's help: tandem help inject

    Run 'tandem <command> --help' for a command's options.

    """

    /// A subcommand with options of its own. Commands that run another program (supervise) read
    /// `--help` themselves, since one after `--` belongs to that program.
    private struct Subcommand {
        let help: (() -> String)?
        let run: ([String]) -> Int32
    }

    private static func subcommand(_ name: String) -> Subcommand? {
        switch name {
        case "inject", "uninject":
            let command = InjectCommand(operation: name == "inject" ? .inject : .uninject)
            return Subcommand(help: { command.help }, run: command.run)
        case "webhook":
            let command = WebhookCommand()
            return Subcommand(help: { command.help }, run: command.run)
        case "proxy":
            let command = ProxyCommand()
            return Subcommand(help: { command.help }, run: command.run)
        case "bridge":
            let command = BridgeCommand()
            return Subcommand(help: { command.help }, run: command.run)
        case "supervise":
            return Subcommand(help: nil, run: SuperviseCommand.run)
        case "await":
            return Subcommand(help: nil, run: AwaitCommand.run)
        case "install":
            return Subcommand(help: nil, run: InstallCommand.run)
        default:
            return nil
        }
    }

    public static func main() -> Never {
        exit(run(Array(CommandLine.arguments.dropFirst())))
    }

    /// Runs one command line and returns its exit status; the testable entry point.
    public static func run(_ arguments: [String]) -> Int32 {
        guard let name = arguments.first else {
            Console.error(usage)
            return 64
        }
        let rest = Array(arguments.dropFirst())
        switch name {
        case "version", "--version":
            Console.out(BuildInfo.summary)
            return 0
        case "help", "-h", "--help":
            if let topic = rest.first, subcommand(topic) != nil {
                return run([topic, "--help"])
            }
            Console.out(usage)
            return 0
        default:
            guard let command = subcommand(name) else {
                Console.error("tandem: unknown command \"\(name)\"\n\n" + usage)
                return 64
            }
            if let help = command.help, rest.contains("-h") || rest.contains("--help") {
                Console.out(help())
                return 0
            }
            return command.run(rest)
        }
    }
}
