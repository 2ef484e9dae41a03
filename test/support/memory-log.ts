import type { Log } from '../../lib'

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error'
  message: string
  extra: Record<string, unknown>[]
}

/** A Log that keeps what it is given, so tests can assert on it (and scan it for secrets). */
export function memoryLog(): { log: Log; entries: LogEntry[] } {
  const entries: LogEntry[] = []
  const at =
    (level: LogEntry['level']) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      entries.push({ level, message, extra })
  return { log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, entries }
}
