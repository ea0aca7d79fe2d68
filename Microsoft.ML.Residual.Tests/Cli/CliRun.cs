using System;
using System.IO;
using System.Threading;
using ResidualML.Cli;
using Spectre.Console;

namespace Microsoft.ML.Residual.Tests.Cli;

/// <summary>One in-process run of the residualml command line: its exit code, what it printed and what it wrote to the error stream.</summary>
internal sealed record CliRun(int ExitCode, string Output, string Errors)
{
    public static CliRun Of(string workingDirectory, params string[] args) => Of(workingDirectory, CancellationToken.None, args);

    public static CliRun Of(string workingDirectory, CancellationToken cancellation, params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        int code = ResidualML.Cli.Cli.Run(args, new CliContext(console, errors, workingDirectory, cancellation));
        return new CliRun(code, output.ToString(), errors.ToString());
    }

    public override string ToString() => $"exit {ExitCode}\n--- output\n{Output}\n--- errors\n{Errors}";
}
