using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace ResidualML.Cli
{
    /// <summary>A mistake in how the command was called (exit code 2): an unknown option, a missing or malformed value.</summary>
    internal sealed class UsageException : Exception
    {
        public UsageException(string message) : base(message)
        {
        }
    }

    /// <summary>One option a command accepts: <c>--name VALUE</c>, or a flag <c>--name</c> when <paramref name="Value"/> is null.</summary>
    internal sealed record OptionSpec(string Name, string? Value, string Help);

    /// <summary>
    /// The options of one command line, checked against what the command accepts: <c>--name value</c>, <c>--name=value</c> and
    /// flags, each at most once. Typed readers fail with a <see cref="UsageException"/> that names the option and the expected form.
    /// </summary>
    internal sealed class CommandLine
    {
        private readonly string command;
        private readonly Dictionary<string, string?> values = new(StringComparer.Ordinal);
        private readonly string workingDirectory;

        public CommandLine(string command, IReadOnlyList<OptionSpec> accepted, IEnumerable<string> tokens, string workingDirectory)
        {
            this.command = command;
            this.workingDirectory = workingDirectory;
            var specs = accepted.ToDictionary(s => s.Name, StringComparer.Ordinal);
            using IEnumerator<string> token = tokens.GetEnumerator();
            while (token.MoveNext())
            {
                string raw = token.Current;
                if (!raw.StartsWith("--", StringComparison.Ordinal) || raw.Length == 2)
                    throw new UsageException($"'{command}' takes options only (--name value); '{raw}' is not one. See 'residualml {command} --help'.");
                int equals = raw.IndexOf('=', StringComparison.Ordinal);
                string name = equals > 0 ? raw[2..equals] : raw[2..];
                if (!specs.TryGetValue(name, out OptionSpec? spec))
                    throw new UsageException($"'{command}' has no option --{name}{Suggestion(name, specs.Keys)}. See 'residualml {command} --help'.");
                if (values.ContainsKey(name)) throw new UsageException($"--{name} is given twice; give it once.");
                if (spec.Value is null)
                {
                    if (equals > 0) throw new UsageException($"--{name} is a flag and takes no value.");
                    values[name] = null;
                    continue;
                }

                string? value = equals > 0 ? raw[(equals + 1)..] : token.MoveNext() ? token.Current : null;
                if (string.IsNullOrEmpty(value) || (equals < 0 && value.StartsWith("--", StringComparison.Ordinal)))
                    throw new UsageException($"--{name} needs a value: --{name} {spec.Value}.");
                values[name] = value;
            }
        }

        public bool Has(string name) => values.ContainsKey(name);

        public string? Text(string name) => values.TryGetValue(name, out string? value) ? value : null;

        public string RequiredText(string name, string what) =>
            Text(name) ?? throw new UsageException($"'{command}' needs --{name}: {what}. See 'residualml {command} --help'.");

        /// <summary>An absolute path: relative ones are taken from the working directory.</summary>
        public string? PathOf(string name) => Text(name) is string path ? Path.GetFullPath(path, workingDirectory) : null;

        public string RequiredPath(string name, string what) => Path.GetFullPath(RequiredText(name, what), workingDirectory);

        /// <summary>The output folder: --output, or the working directory.</summary>
        public string OutputFolder() => PathOf("output") ?? workingDirectory;

        public int Integer(string name, int fallback, int minimum, int maximum)
        {
            if (Text(name) is not string text) return fallback;
            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < minimum || value > maximum)
                throw new UsageException($"--{name} must be a whole number from {minimum} to {maximum}; got '{text}'.");
            return value;
        }

        public double? Number(string name, double minimum, double maximum)
        {
            if (Text(name) is not string text) return null;
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !(value >= minimum && value <= maximum))
                throw new UsageException($"--{name} must be a number from {minimum.ToString(CultureInfo.InvariantCulture)} to {maximum.ToString(CultureInfo.InvariantCulture)}; got '{text}'.");
            return value;
        }

        public string[] List(string name, string[] fallback) =>
            Text(name) is string text ? text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : fallback;

        public T Choice<T>(string name, T fallback, IReadOnlyDictionary<string, T> choices)
        {
            if (Text(name) is not string text) return fallback;
            var match = choices.FirstOrDefault(c => string.Equals(c.Key, text, StringComparison.OrdinalIgnoreCase));
            if (match.Key is null) throw new UsageException($"--{name} must be one of {string.Join(", ", choices.Keys)}; got '{text}'.");
            return match.Value;
        }

        private static string Suggestion(string name, IEnumerable<string> known)
        {
            string? best = known.OrderBy(k => Distance(name, k)).FirstOrDefault();
            return best != null && Distance(name, best) <= Math.Max(2, name.Length / 3) ? $" (did you mean --{best}?)" : string.Empty;
        }

        // Levenshtein distance, for "did you mean".
        private static int Distance(string a, string b)
        {
            var previous = Enumerable.Range(0, b.Length + 1).ToArray();
            for (int i = 1; i <= a.Length; i++)
            {
                var current = new int[b.Length + 1];
                current[0] = i;
                for (int j = 1; j <= b.Length; j++)
                    current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                previous = current;
            }

            return previous[b.Length];
        }
    }
}
