# The Jenkins controller's image (seed §6 "AMI 관리: Packer를 통한 Jenkins 이미지 자동화").
#
#   packer init packer/jenkins.pkr.hcl
#   packer build packer/jenkins.pkr.hcl
#
# The build ends by writing the new AMI id to the SSM parameter that the CloudFormation template
# reads (CiImageId, default from stack/come2us.py: JenkinsHost.ami_parameter), so deploying a
# new image is a stack update, not a template edit. JENKINS_HOME is not in the image: it is the
# stack's encrypted EBS volume, attached as /dev/sdf and mounted by the unit installed below.
# The defaults of `region` and `ami_parameter` are the model's (tests/unit/test_packer.py).

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "region" {
  type    = string
  default = "ap-northeast-2"
}

variable "ami_parameter" {
  type    = string
  default = "/come2us/jenkins/ami-id"
}

# Only the machine that builds the image; the controller's size is the environment's.
variable "build_instance_type" {
  type    = string
  default = "t3.small"
}

locals {
  stamp = formatdate("YYYYMMDD-hhmmss", timestamp())
}

source "amazon-ebs" "jenkins" {
  region        = var.region
  instance_type = var.build_instance_type
  ssh_username  = "ec2-user"
  ami_name      = "come2us-jenkins-${local.stamp}"
  encrypt_boot  = true

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-*-x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  tags = {
    Project = "come2us"
    Role    = "jenkins"
  }
}

build {
  sources = ["source.amazon-ebs.jenkins"]

  provisioner "shell" {
    inline = [
      "set -euxo pipefail",
      "sudo dnf -y upgrade",
      "sudo dnf -y install java-17-amazon-corretto-headless git docker amazon-cloudwatch-agent",
      "sudo curl -fsSL -o /etc/yum.repos.d/jenkins.repo https://pkg.jenkins.io/redhat-stable/jenkins.repo",
      "sudo rpm --import https://pkg.jenkins.io/redhat-stable/jenkins.io-2023.key",
      "sudo dnf -y install jenkins",
      "sudo usermod -aG docker jenkins",
      # JENKINS_HOME on the stack's volume: format it on first boot only, then mount it.
      "printf '%s\\n' '[Unit]' 'Description=JENKINS_HOME on its own EBS volume' 'Before=jenkins.service' '[Service]' 'Type=oneshot' 'ExecStart=/bin/sh -c \"d=$(readlink -f /dev/sdf); blkid $d || mkfs.xfs $d; mkdir -p /var/lib/jenkins; mount $d /var/lib/jenkins; chown jenkins:jenkins /var/lib/jenkins\"' 'RemainAfterExit=yes' '[Install]' 'WantedBy=multi-user.target' | sudo tee /etc/systemd/system/jenkins-home.service",
      "sudo systemctl enable jenkins-home.service docker.service jenkins.service amazon-cloudwatch-agent.service",
    ]
  }

  post-processors {
    # The manifest records "<region>:<ami-id>"; the AMI id goes to the SSM parameter.
    post-processor "manifest" {
      output     = "packer-manifest.json"
      strip_path = true
    }
    post-processor "shell-local" {
      inline = [
        "ami=$(jq -r '.builds[-1].artifact_id' packer-manifest.json | cut -d: -f2)",
        "aws ssm put-parameter --region ${var.region} --name ${var.ami_parameter} --type String --data-type aws:ec2:image --overwrite --value \"$ami\"",
      ]
    }
  }
}
