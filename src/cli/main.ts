import { parseArgs } from 'node:util';
import { ConfigError } from '../config/index.js';
import { CryptoError } from '../crypto/index.js';
import { DatabaseUnavailableError } from '../store/database.js';
import {
  checkConfigCommand,
  keysGenerateCommand,
  keysRotateCommand,
  migrateCommand,
  tokenCommand,
} from './commands.js';
import { doctorCommand } from './doctor.js';
import { UsageError } from './load.js';
import { serveCommand } from './serve.js';

const usage = `nunq-connect: the OAuth connections service of the nunq AI platform

Usage:
  nunq-connect serve [--config FILE]           run the service (demo mode without a config)
  nunq-connect check-config FILE               validate a config file; exit 1 on problems
  nunq-connect migrate [--config FILE]         apply database migrations
  nunq-connect doctor [--config FILE] [--json] check config, database, keys, providers, clock;
                                               exit 1 when a check failed
  nunq-connect keys generate                   print a new base64 32-byte key
  nunq-connect keys rotate [--config FILE]     re-seal every stored secret under the active key
  nunq-connect token --user ID [--role admin] [--name NAME] [--config FILE]
                                               mint a session JWT with the configured secret
`;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Whether stderr is a terminal (progress bars, plain messages). */
  isTTY: boolean;
  /** Whether stdout is a terminal: `serve` logs pretty there, JSON lines otherwise. */
  stdoutIsTTY?: boolean;
}

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
  isTTY: process.stderr.isTTY === true,
  stdoutIsTTY: process.stdout.isTTY === true,
};

/** Runs the CLI; returns the exit code. Known failures print one clear message, never a stack trace. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serveCommand(flags(rest).config, io);
      case 'check-config': {
        const { positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true });
        if (positionals.length !== 1) return fail(io, 'check-config needs exactly one FILE');
        return await checkConfigCommand(positionals[0]!, io);
      }
      case 'migrate':
        return await migrateCommand(flags(rest).config, io);
      case 'doctor': {
        const { values } = parseArgs({
          args: rest,
          strict: true,
          options: { config: { type: 'string' }, json: { type: 'boolean' } },
        });
        return await doctorCommand(values, io);
      }
      case 'keys': {
        const [sub, ...more] = rest;
        if (sub === 'generate') return keysGenerateCommand(io);
        if (sub === 'rotate') return await keysRotateCommand(flags(more).config, io);
        return fail(io, 'keys needs generate or rotate');
      }
      case 'token': {
        const { values } = parseArgs({
          args: rest,
          strict: true,
          options: {
            user: { type: 'string' },
            role: { type: 'string' },
            name: { type: 'string' },
            config: { type: 'string' },
            'expires-in': { type: 'string' },
          },
        });
        if (values.user === undefined) return fail(io, 'token needs --user ID');
        return await tokenCommand(values, io);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(usage);
        return command === undefined ? 1 : 0;
      default:
        return fail(io, `unknown command "${command}"\n\n${usage}`);
    }
  } catch (error) {
    if (error instanceof UsageError) return fail(io, error.message);
    if (error instanceof DatabaseUnavailableError) {
      io.err(`nunq-connect: ${error.message}\n`);
      return 1;
    }
    if (error instanceof ConfigError) {
      io.err(`${error.format()}\n`);
      return 1;
    }
    if (error instanceof CryptoError) {
      io.err(`encryption: ${error.message}\n`);
      return 1;
    }
    if (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      return fail(io, error.message);
    }
    // Anything else (database unreachable, migration failed): one line, no stack trace unless asked.
    if (io.env.NUNQ_DEBUG === '1' || !(error instanceof Error)) throw error;
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    io.err(`nunq-connect: ${error.message}${cause}\n`);
    return 1;
  }
}

function flags(args: string[]): { config?: string } {
  const { values } = parseArgs({ args, strict: true, options: { config: { type: 'string' } } });
  return values;
}

function fail(io: Io, message: string): number {
  io.err(`nunq-connect: ${message}\n`);
  return 2;
}
