/**
 * Settings come from the environment, read once where a handler module loads, and fail loudly naming
 * the variable. No silent defaults for resource names; numeric settings have documented defaults.
 */
import { ConfigurationError } from './errors';

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value.trim() === '') {
    throw new ConfigurationError(`Missing required setting: environment variable ${name} is not set.`);
  }
  return value.trim();
}

export function optionalEnv(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

export function numberEnv(name: string, defaultValue: number, opts: { min?: number; max?: number } = {}): number {
  const raw = optionalEnv(name);
  if (raw === undefined) return defaultValue;
  const value = Number(raw);
  if (!Number.isFinite(value)) {
    throw new ConfigurationError(`Setting ${name} must be a number, got "${raw}".`);
  }
  if (opts.min !== undefined && value < opts.min) {
    throw new ConfigurationError(`Setting ${name} must be >= ${opts.min}, got ${value}.`);
  }
  if (opts.max !== undefined && value > opts.max) {
    throw new ConfigurationError(`Setting ${name} must be <= ${opts.max}, got ${value}.`);
  }
  return value;
}
