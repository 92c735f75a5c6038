import { createHash } from 'node:crypto';

/** SHA-256 of a string, hex: how state values and session cookies are stored (never in clear). */
export const sha256Hex = (value: string): string => createHash('sha256').update(value).digest('hex');
