/** Output and errors of the CLI: commands write through Io so tests can run main() in-process. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** A failure the user can act on: printed as `mlpipe: <message>`, exits with `exitCode`. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Wrong arguments: exit code 2, with the command's usage. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}
