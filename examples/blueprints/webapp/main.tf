# An example blueprint: one "stack" per tenant, built from null_resource so it runs anywhere.
# `fail = true` makes the apply fail on purpose, to see rollbacks and halted rollouts at work.

variable "tenant" {
  type        = string
  description = "The tenant this stack belongs to."
}

variable "instance_count" {
  type        = number
  default     = 1
  description = "How many app instances the stack runs."
}

variable "dedicated" {
  type        = bool
  default     = false
  description = "A dedicated database instead of a schema on the shared one."
}

variable "api_key" {
  type        = string
  default     = "change-me"
  sensitive   = true
  description = "A secret the app needs; never printed."
}

variable "fail" {
  type        = bool
  default     = false
  description = "Make the apply fail (for trying out rollbacks)."
}

resource "null_resource" "instance" {
  count = var.instance_count
  triggers = {
    tenant = var.tenant
    index  = count.index
  }
}

resource "null_resource" "database" {
  triggers = {
    kind = var.dedicated ? "dedicated" : "shared"
  }
}

locals {
  check_command = var.fail ? "echo 'deploy check failed' && exit 1" : "echo 'deploy check passed'"
}

# Runs its check whenever the check itself changes; idempotent otherwise, so a plan of an
# unchanged stack shows no changes (and drift checks mean something).
resource "null_resource" "deploy_check" {
  triggers = {
    command = local.check_command
  }
  provisioner "local-exec" {
    command = local.check_command
  }
}

output "endpoint" {
  value = "https://${var.tenant}.example.com"
}
