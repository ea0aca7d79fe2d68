// residualml: the command-line tool of ResidualML. See README.md beside this file, or run 'residualml --help'.
using System;
using System.Threading;
using ResidualML.Cli;
using Spectre.Console;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C stops training between two batches and lets the command exit cleanly; a second one kills.
    if (cancel.IsCancellationRequested) return;
    e.Cancel = true;
    cancel.Cancel();
};

// In a log file or a pipe, lines are not wrapped at the default 80 columns.
IAnsiConsole console = AnsiConsole.Console;
if (Console.IsOutputRedirected) console.Profile.Width = 200;
return Cli.Run(args, new CliContext(console, Console.Error, Environment.CurrentDirectory, cancel.Token));
