import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'

/**
 * An API Gateway (HTTP API) result with a JSON body and `content-type: application/json`; no body
 * when `body` is undefined.
 *
 * @example
 * return jsonResponse(201, { id }, { location: `/orders/${id}` })
 */
export const jsonResponse = (
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 => ({
  statusCode: status,
  headers: { 'content-type': 'application/json', ...headers },
  body: body === undefined ? '' : JSON.stringify(body),
})
