using System;
using System.IO;

namespace Microsoft.ML.Residual.IO
{
    /// <summary>
    /// A model file (model.zip) that cannot be loaded: truncated, damaged, not a model, or saved by a newer ML.NET or ONNX
    /// Runtime than the application has. The message names the file and the innermost cause; <see cref="Exception.InnerException"/>
    /// is ML.NET's own error.
    /// </summary>
    public sealed class InvalidModelException : IOException
    {
        /// <summary>Creates the exception for <paramref name="filePath"/>.</summary>
        public InvalidModelException(string message, string filePath, Exception? innerException = null)
            : base(message, innerException) => FilePath = filePath;

        /// <summary>The full path of the model file.</summary>
        public string FilePath { get; }
    }
}
