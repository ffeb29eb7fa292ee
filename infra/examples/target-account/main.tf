# The role teiji assumes in a target account, applied with that account's credentials.
#
#   # In teiji's account: allowed_accounts = ["222222222222"], role_name = "teiji-target",
#   # and the ExternalId in the SecureString /teiji/external-id/222222222222 (external_ids).
#   cd infra/examples/target-account
#   terraform init && terraform apply -var 'external_id=...'
#
# teiji_role_arn is the execution_role_arn output of the teiji deployment.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}

provider "aws" {
  region = "ap-northeast-1"
  # Credentials of the target account (a profile, or assume_role into it).
}

variable "external_id" {
  description = "The ExternalId teiji presents for this account."
  type        = string
  sensitive   = true
}

module "teiji_target" {
  source = "../../modules/target-account-role"

  role_name      = "teiji-target"
  teiji_role_arn = "arn:aws:iam::111111111111:role/teiji-tick"
  external_id    = var.external_id
  regions        = ["ap-northeast-1", "us-east-1"]
  clusters       = ["example-cluster"]

  tags = {
    project = "teiji"
  }
}

output "role_arn" {
  value = module.teiji_target.role_arn
}
