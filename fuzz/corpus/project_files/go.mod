module example.org/app

go 1.22

require (
	example.com/a v1.2.0
	"example.com/b" v0.3.0 // indirect
)

exclude example.com/a v1.1.0

replace (
	example.com/b v0.3.0 => example.com/b-fork v0.3.1
	example.com/c => ../c
)

retract [v0.1.0, v0.2.0]
retract `v0.9.0`
