package artifact_test

import (
	"errors"
	"fmt"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

func Example() {
	file := []byte(`{
  "format_version": 1,
  "nodes": [
    {"name": "replica-1", "role": "replica", "host": "10.0.0.2", "max_lag": "10s"},
    {"name": "primary", "role": "primary", "host": "10.0.0.1", "password_env": "APP_DB_PASSWORD"}
  ],
  "read_policy": {"strategy": "least_lag"}
}`)
	topo, err := artifact.Parse(file)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := topo.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	topo = topo.WithDefaults()
	for _, n := range topo.Nodes {
		fmt.Printf("%s %s %s:%d sslmode=%s\n", n.Name, n.Role, n.Host, n.Port, n.SSLMode)
	}
	fmt.Println(topo.ReadPolicy.Strategy, "falling back to", topo.ReadPolicy.Fallback)
	// Output:
	// replica-1 replica 10.0.0.2:5432 sslmode=prefer
	// primary primary 10.0.0.1:5432 sslmode=prefer
	// least_lag falling back to primary
}

func ExampleMarshal() {
	topo := artifact.Topology{
		Nodes: []artifact.Node{
			{Name: "replica-1", Role: artifact.RoleReplica, Host: "10.0.0.2"},
			{Name: "primary", Role: artifact.RolePrimary, Host: "10.0.0.1"},
		},
		Pool: artifact.Pool{MaxConns: 20},
	}
	data, err := artifact.Marshal(topo)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(data))
	// Output:
	// {
	//   "format_version": 1,
	//   "nodes": [
	//     {
	//       "name": "primary",
	//       "role": "primary",
	//       "host": "10.0.0.1"
	//     },
	//     {
	//       "name": "replica-1",
	//       "role": "replica",
	//       "host": "10.0.0.2"
	//     }
	//   ],
	//   "pool": {
	//     "max_conns": 20
	//   }
	// }
}

func ExampleTopology_Validate() {
	topo := artifact.Topology{
		Nodes: []artifact.Node{
			{Name: "pg-a", Role: artifact.RolePrimary, Host: "10.0.0.1"},
			{Name: "pg-b", Role: artifact.RolePrimary, Host: "10.0.0.2", MaxLag: "10"},
		},
		Routes: []artifact.Route{{Name: "analytics", Nodes: []string{"pg-c"}}},
	}
	err := topo.Validate()
	fmt.Println(err)

	var verr *artifact.ValidationError
	if errors.As(err, &verr) {
		fmt.Println(len(verr.Problems), "problems, the first at", verr.Problems[0].Path)
	}
	// Output:
	// invalid topology (3 problems):
	// nodes[1].max_lag: invalid duration "10": use Go duration syntax such as "500ms", "10s" or "1m"
	// nodes: 2 primaries (nodes[0] "pg-a", nodes[1] "pg-b"): exactly one node must have role "primary"
	// routes[0].nodes[0]: unknown node "pg-c"; the nodes are: pg-a, pg-b
	// 3 problems, the first at nodes[1].max_lag
}
