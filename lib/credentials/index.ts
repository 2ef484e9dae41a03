export { type RdsIamCredentialsOptions, rdsIamCredentials } from './rds-iam'
export { type SecretsManagerCredentialsOptions, secretsManagerCredentials } from './secrets-manager'
