# Each other account's ExternalId, kept out of the function's environment: one SSM Parameter
# Store SecureString per account at <external_id_parameter_path>/<account>. The engine reads
# the one it needs right before its first AssumeRole into that account, and keeps it for the
# life of the container. Values given in external_ids are written here (they then sit in the
# Terraform state too); otherwise create the parameters yourself with
# `aws ssm put-parameter --type SecureString`.

resource "aws_ssm_parameter" "external_id" {
  #checkov:skip=CKV_AWS_337:The AWS managed key aws/ssm is the default; external_id_kms_key_arn sets a customer managed key, which the role may then use only through SSM.
  for_each = toset(nonsensitive(keys(var.external_ids)))

  name        = "${local.external_id_parameter_path}/${each.key}"
  description = "teiji: the ExternalId of the role it assumes in account ${each.key}"
  type        = "SecureString"
  value       = var.external_ids[each.key]
  key_id      = var.external_id_kms_key_arn
  tags        = local.tags
}
