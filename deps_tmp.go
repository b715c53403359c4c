package main
import (
 _ "github.com/twmb/franz-go/pkg/kgo"
 _ "github.com/twmb/franz-go/pkg/kfake"
 _ "github.com/twmb/franz-go/pkg/kadm"
 _ "github.com/linkedin/goavro/v2"
 _ "github.com/testcontainers/testcontainers-go"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "gopkg.in/yaml.v3"
)
func main(){}
