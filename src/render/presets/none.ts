// none: run.command as given (any program), its placeholders filled. run.with is free-form here:
// its values are only what {{with.KEY}} refers to.
import { configError } from '../../lib/errors.ts';
import { mapping } from '../params.ts';
import { expandArgv } from '../placeholders.ts';
import type { Preset } from './preset.ts';

export const none: Preset = {
  name: 'none',
  takesCommand: true,
  params: (raw) => (raw === undefined ? {} : mapping(raw, 'run.with')),
  secrets: () => [],
  extraArgs: () => [],
  build(_params, scope, run) {
    const command = run.command;
    if (command === undefined || command.length === 0) {
      throw configError('run.command: nothing to run: set run.command or run.preset (or give COMMAND after --)');
    }
    if (!Array.isArray(command)) throw configError('run.command: expected a list of arguments (never a shell string)');
    return { argv: expandArgv(command, scope, 'run.command'), files: [] };
  },
};
