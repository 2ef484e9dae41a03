import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'

export const jsonResponse = (
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 => ({
  statusCode: status,
  headers: { 'content-type': 'application/json', ...headers },
  body: body === undefined ? '' : JSON.stringify(body),
})
