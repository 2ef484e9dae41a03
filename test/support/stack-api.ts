// HTTP calls to a local stack (test/support/stack.ts), as a developer's curl would make them.
import { Client } from 'pg'
import { localToken } from '../../scripts/local-jwt'
import type { Stack } from './stack'

export interface Answer {
  status: number
  headers: Headers
  body: { error?: { code: string; message: string; requestId: string } } & Record<string, unknown>
  text: string
}

export interface CallOptions {
  /** As a deployed caller: a token whose tenant_id claim names the tenant. */
  tenant?: string
  body?: unknown
  raw?: string
  headers?: Record<string, string>
}

/** `api` for any caller, `admin` with the stack's admin key, `superuser` on one of its servers. */
export function stackApi(stack: () => Stack) {
  const api = async (method: string, path: string, { tenant, body, raw, headers = {} }: CallOptions = {}) => {
    const h: Record<string, string> = { ...headers }
    if (tenant !== undefined) h.authorization = `Bearer ${await localToken(stack().localDir, tenant)}`
    let payload: string | undefined = raw
    if (body !== undefined) payload = JSON.stringify(body)
    if (payload !== undefined) h['content-type'] ??= 'application/json'
    const res = await fetch(`${stack().url}${path}`, { method, headers: h, body: payload })
    const text = await res.text()
    // serverless-offline answers 200 for a failed invocation (an HTTP API v2 result with no
    // statusCode), the Lambda error as its body: a Lambda timeout after a reload ended the workers
    // was the e2e flake of issue 15. Say what answered, and what the stack printed.
    if (res.status === 200 && (text === '' || text.includes('"errorMessage"'))) {
      console.warn(
        `${method} ${path} answered 200 with ${text ? `a Lambda error: ${text.slice(0, 2_000)}` : 'an empty body'}; ` +
          `headers ${JSON.stringify([...res.headers])}; the stack's last output:\n${stack().output().slice(-4_000)}`,
      )
    }
    let parsed = {}
    try {
      parsed = text ? JSON.parse(text) : {}
    } catch {
      parsed = {}
    }
    return { status: res.status, headers: res.headers, body: parsed as Answer['body'], text }
  }
  const admin = (method: string, path: string, body?: unknown) =>
    api(method, path, { body, headers: { 'x-admin-key': stack().adminKey } })
  const superuser = async <T>(fn: (c: Client) => Promise<T>, port = stack().pgPort): Promise<T> => {
    const c = new Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${port}/tenant_pools` })
    await c.connect()
    try {
      return await fn(c)
    } finally {
      await c.end()
    }
  }
  return { api, admin, superuser }
}
