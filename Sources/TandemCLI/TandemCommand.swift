import Glibc

/// The `tandem` command: parses the subcommand and maps every failure to an exit status.
public enum TandemCommand {
    public static func main() {
        exit(0)
    }
}
