using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Reflection;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>
    /// Binds search-space parameters to the public settable properties of a task's options class, checking every value
    /// once before the sweep starts, so that a misspelt option or a value of the wrong type fails at once with its name.
    /// </summary>
    internal sealed class OptionBinder
    {
        // Options the sweep itself manages, or that are not hyperparameters.
        private static readonly string[] Managed =
        {
            "Epochs", "Seed", "CheckpointDirectory", "ValidationSet", "ValidationFraction", "Progress", "BatchProgress", "GradientFlowProgress", "CancellationToken",
        };

        private readonly Type optionsType;
        private readonly (SearchParameter Parameter, PropertyInfo Property)[] bindings;

        public OptionBinder(Type optionsType, SearchSpace space)
        {
            this.optionsType = optionsType;
            if (space.Parameters.Count == 0)
                throw new InvalidOperationException("The search space is empty: give it at least one parameter with SetSearchSpace(s => s.Choice(...)/Uniform(...)/LogUniform(...)).");
            var candidates = optionsType.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.CanWrite && p.SetMethod!.IsPublic && !Managed.Contains(p.Name) && !p.Name.EndsWith("ColumnName", StringComparison.Ordinal))
                .ToArray();
            bindings = space.Parameters.Select(parameter =>
            {
                PropertyInfo property = candidates.FirstOrDefault(p => string.Equals(p.Name, parameter.Name, StringComparison.OrdinalIgnoreCase))
                    ?? throw new ArgumentException(
                        $"The search space's '{parameter.Name}' is not an option a sweep can set on {optionsType.Name}. Use one of: "
                        + string.Join(", ", candidates.Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal))
                        + (Managed.Contains(parameter.Name, StringComparer.OrdinalIgnoreCase) ? $". ({parameter.Name} is set by the sweep itself.)" : "."));
                Type target = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                if (!parameter.IsChoice && !IsNumber(target))
                    throw new ArgumentException($"The search space's '{parameter.Name}' is a range, but {optionsType.Name}.{property.Name} is a {target.Name}; use Choice(...) for it.");
                if (parameter.IsChoice)
                    foreach (object value in parameter.Values) Convert(value, property, parameter);
                return (parameter, property);
            }).ToArray();
        }

        /// <summary>The option values at <paramref name="coordinates"/>, converted to the properties' types, in search-space order.</summary>
        public IReadOnlyDictionary<string, object> Decode(double[] coordinates)
        {
            var values = new Dictionary<string, object>(StringComparer.Ordinal);
            for (int d = 0; d < bindings.Length; d++)
                values[bindings[d].Property.Name] = Convert(bindings[d].Parameter.Decode(coordinates[d]), bindings[d].Property, bindings[d].Parameter);
            return values;
        }

        /// <summary>
        /// Every value a parameter can take at its edges, one parameter at a time: each choice, and a range's ends; for
        /// checking the options they make before the sweep starts.
        /// </summary>
        public IEnumerable<(string Parameter, object Value)> EdgeValues() =>
            bindings.SelectMany(b => (b.Parameter.IsChoice ? Enumerable.Range(0, b.Parameter.Values.Count).Select(i => (double)i) : new[] { 0.0, 1.0 })
                .Select(c => (b.Property.Name, Convert(b.Parameter.Decode(c), b.Property, b.Parameter))));

        /// <summary>Sets one option.</summary>
        public void Apply(object options, string name, object value) => bindings.First(b => b.Property.Name == name).Property.SetValue(options, value);

        /// <summary>Sets the values on an options object.</summary>
        public void Apply(object options, IReadOnlyDictionary<string, object> values)
        {
            foreach (var (_, property) in bindings) property.SetValue(options, values[property.Name]);
        }

        private object Convert(object value, PropertyInfo property, SearchParameter parameter)
        {
            Type target = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            try
            {
                if (target.IsInstanceOfType(value)) return value;
                if (target.IsEnum)
                {
                    if (value is string text && Enum.TryParse(target, text, ignoreCase: true, out object? member) && Enum.IsDefined(target, member!)) return member!;
                    throw new FormatException($"use one of {string.Join(", ", Enum.GetNames(target))}");
                }

                if (IsNumber(target) && value is IConvertible && IsNumber(value.GetType()))
                {
                    double number = System.Convert.ToDouble(value, CultureInfo.InvariantCulture);
                    if (target == typeof(int) || target == typeof(long))
                    {
                        // A range's draw is rounded; a choice's value must already be whole.
                        if (parameter.IsChoice && number != Math.Floor(number)) throw new FormatException("give whole numbers");
                        number = Math.Round(number, MidpointRounding.AwayFromZero);
                    }

                    return System.Convert.ChangeType(number, target, CultureInfo.InvariantCulture);
                }

                throw new FormatException($"a {value.GetType().Name} cannot be one");
            }
            catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException)
            {
                throw new ArgumentException($"The search space's '{parameter.Name}' has the value '{value}', but {optionsType.Name}.{property.Name} is a {target.Name}: {e.Message}.");
            }
        }

        private static bool IsNumber(Type type) =>
            type == typeof(double) || type == typeof(float) || type == typeof(int) || type == typeof(long);
    }
}
