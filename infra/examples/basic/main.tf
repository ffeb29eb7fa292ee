# A root configuration to copy: teiji in one account and region, managing one cluster.
#
#   make package                      # builds dist/teiji-lambda.zip (no Docker)
#   cd infra/examples/basic
#   terraform init && terraform apply
#
# Start with dry_run = true: every tick logs what it would change and changes nothing. Read a
# few reports in the log group, then set dry_run = false and apply again.

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
}

module "teiji" {
  source = "../.."

  clusters = ["example-cluster"]

  # Built by `make package` for the defaults below (arm64, python3.12).
  lambda_zip_path = "${path.root}/../../../dist/teiji-lambda.zip"
  runtime         = "python3.12"
  architecture    = "arm64"

  # Who may touch what: this account and region only, unless listed (README "Deploy"). The
  # sample schedules also name example-service-us@us-east-1. To manage other accounts, list
  # them, name the role modules/target-account-role creates in each, and give each its
  # ExternalId (kept in SSM SecureStrings, never in the environment):
  #   allowed_accounts = ["222222222222"]
  #   role_name        = "teiji-target"
  #   external_ids     = { "222222222222" = var.external_id_222222222222 }
  allowed_regions = ["us-east-1"]
  max_desired     = 20

  # Wake on request (README "Wake on request"): the Application Load Balancers, in this account
  # and region, through which a request may wake a service whose schedule says
  # wake: {on_request: true}. Each gets a Lambda target group of the wake function:
  #   wake_load_balancers = ["arn:aws:elasticloadbalancing:ap-northeast-1:111111111111:loadbalancer/app/stg/0123456789abcdef"]

  default_timezone   = "Asia/Tokyo"
  dry_run            = true
  protected          = ["example-cluster/example-service-prod"]
  create_alarm_topic = true

  tags = {
    project = "teiji"
  }
}

output "config_table_name" {
  value = module.teiji.config_table_name
}

output "state_table_name" {
  value = module.teiji.state_table_name
}

output "function_name" {
  value = module.teiji.function_name
}

output "alarm_topic_arn" {
  value = module.teiji.alarm_topic_arn
}
