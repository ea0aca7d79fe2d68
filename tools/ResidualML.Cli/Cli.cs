using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using ResidualML.Cli.Commands;
using Spectre.Console;

namespace ResidualML.Cli
{
    /// <summary>What a command runs with: the console, where errors go, the folder relative paths start from, and Ctrl+C.</summary>
    internal sealed record CliContext(IAnsiConsole Console, TextWriter Errors, string WorkingDirectory, CancellationToken Cancellation);

    /// <summary>A command of the tool: its name, its options and what it does.</summary>
    internal interface ICommand
    {
        string Name { get; }

        string Summary { get; }

        /// <summary>Lines of examples for --help.</summary>
        IReadOnlyList<string> Examples { get; }

        IReadOnlyList<OptionSpec> Options { get; }

        /// <summary>Runs the command; returns the exit code.</summary>
        int Run(CommandLine line, CliContext context);
    }

    /// <summary>
    /// The residualml command line: dispatches to a command, prints help, and turns every failure into one line on the error
    /// stream and an exit code (0 done, 1 the run failed, 2 the command was called wrongly, 130 cancelled with Ctrl+C).
    /// </summary>
    internal static class Cli
    {
        public const int Succeeded = 0;
        public const int Failed = 1;
        public const int UsageError = 2;
        public const int Cancelled = 130;

        public static readonly IReadOnlyList<ICommand> Commands = new ICommand[]
        {
            new TrainCommand(), new LrFindCommand(), new EvaluateCommand(), new PredictCommand(), new ExplainCommand(), new SegmentCommand(), new DetectCommand(), new SweepCommand(), new DiagnoseCommand(), new ExportCommand(),
        };

        public static int Run(string[] args, CliContext context)
        {
            if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
            {
                PrintOverview(context.Console);
                return args.Length == 0 ? UsageError : Succeeded;
            }

            if (args[0] == "--version")
            {
                context.Console.WriteLine(typeof(Cli).Assembly.GetName().Version?.ToString(3) ?? "unknown");
                return Succeeded;
            }

            ICommand? command = Commands.FirstOrDefault(c => c.Name == args[0]);
            if (command is null)
                return Report(context, UsageError, $"unknown command '{args[0]}'; the commands are {string.Join(", ", Commands.Select(c => c.Name))}. See 'residualml --help'.");
            string[] rest = args[1..];
            if (rest.Any(a => a is "--help" or "-h"))
            {
                PrintHelp(context.Console, command);
                return Succeeded;
            }

            try
            {
                var line = new CommandLine(command.Name, command.Options, rest, context.WorkingDirectory);
                return command.Run(line, context);
            }
            catch (UsageException e)
            {
                return Report(context, UsageError, e.Message);
            }
            catch (OperationCanceledException)
            {
                return Report(context, Cancelled, "cancelled; files written before the cancel are kept.");
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException
                or FormatException or NotSupportedException or InvalidDataException)
            {
                return Report(context, Failed, Describe(e));
            }
            catch (Exception e)
            {
                return ReportUnexpected(context, e);
            }
        }

        /// <summary>The name of the file, in the working directory, that holds the full report of an unexpected error.</summary>
        public const string ErrorLogFile = "residualml-error.log";

        /// <summary>
        /// One line for an error nothing anticipated (a libtorch failure, say): the exception's type and message without
        /// libtorch's C++ stack; the whole exception, stacks included, goes to <see cref="ErrorLogFile"/> in the working
        /// directory (or the temporary folder when that cannot be written), and the line says where.
        /// </summary>
        internal static int ReportUnexpected(CliContext context, Exception e)
        {
            string? log = WriteErrorLog(context.WorkingDirectory, e) ?? WriteErrorLog(Path.GetTempPath(), e);
            string where = log is null ? string.Empty : $" The full report is in {log}.";
            return Report(context, Failed, $"unexpected {e.GetType().Name}: {WithoutNativeStack(Describe(e))}{where}");
        }

        // libtorch appends "(Could this error message be improved? …)" and "Exception raised from … frame #0: …" to its
        // messages: the C++ source line and stack help libtorch's developers, not our users.
        internal static string WithoutNativeStack(string message)
        {
            int stack = message.IndexOf("Exception raised from ", StringComparison.Ordinal);
            if (stack >= 0) message = message[..stack];
            int plea = message.IndexOf("(Could this error message be improved?", StringComparison.Ordinal);
            if (plea >= 0)
            {
                int end = message.IndexOf(')', plea);
                message = message[..plea] + (end >= 0 ? message[(end + 1)..] : string.Empty);
            }

            return string.Join(' ', message.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }

        private static string? WriteErrorLog(string directory, Exception e)
        {
            string path = Path.Combine(directory, ErrorLogFile);
            string temporary = Path.Combine(directory, $".{ErrorLogFile}.{Guid.NewGuid():N}.tmp");
            try
            {
                File.WriteAllText(temporary, $"residualml {typeof(Cli).Assembly.GetName().Version?.ToString(3)} at {DateTime.UtcNow:O}{Environment.NewLine}{e}{Environment.NewLine}");
                File.Move(temporary, path, overwrite: true);
                return path;
            }
            catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
            {
                try
                {
                    File.Delete(temporary);
                }
                catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
                {
                }

                return null;
            }
        }

        // One line: the message, and the innermost cause's when it adds something (layers between are ML.NET's wrapping).
        private static string Describe(Exception e)
        {
            Exception innermost = e;
            while (innermost.InnerException != null) innermost = innermost.InnerException;
            string message = OneLine(e.Message), cause = OneLine(innermost.Message);
            return innermost == e || message.Contains(cause, StringComparison.Ordinal) ? message : $"{message} ({cause})";
        }

        private static string OneLine(string text) =>
            string.Join(' ', text.Split(new[] { '\r', '\n' }, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

        private static int Report(CliContext context, int exitCode, string message)
        {
            context.Errors.WriteLine($"residualml: error: {message}");
            return exitCode;
        }

        private static void PrintOverview(IAnsiConsole console)
        {
            console.MarkupLine("[bold]residualml[/]: train, evaluate and apply residual image models (ResNet, DenseNet, U-Net) from folders of images.");
            console.WriteLine();
            console.WriteLine("Usage: residualml COMMAND [--option value ...]      residualml COMMAND --help for its options");
            console.WriteLine();
            var table = new Table().NoBorder().HideHeaders().AddColumn("command").AddColumn("what it does");
            foreach (ICommand command in Commands) table.AddRow(new Text(command.Name), new Text(command.Summary));
            console.Write(table);
            console.WriteLine();
            console.WriteLine("Exit codes: 0 done, 1 the run failed (the error says why), 2 the command line is wrong, 130 cancelled (Ctrl+C).");
        }

        private static void PrintHelp(IAnsiConsole console, ICommand command)
        {
            console.MarkupLine($"[bold]residualml {command.Name}[/]: {Markup.Escape(command.Summary)}");
            console.WriteLine();
            var table = new Table().NoBorder().HideHeaders().AddColumn("option").AddColumn("meaning");
            foreach (OptionSpec option in command.Options)
                table.AddRow(new Text(option.Value is null ? $"--{option.Name}" : $"--{option.Name} {option.Value}"), new Text(option.Help));
            console.Write(table);
            console.WriteLine();
            console.WriteLine("Examples:");
            foreach (string example in command.Examples) console.WriteLine("  " + example);
        }
    }
}
